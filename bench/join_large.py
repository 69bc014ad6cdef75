"""join-10m: the join benchmark at 10,000,000 keys, with the serving node's loop and memory.

As ``join`` (same code, same same-run baseline: the serving node idle), on a
node holding 10,000,000 keys of 100-byte values (the data directory is built
once by BulkPut and kept under .rumor/bench-data/; building it takes a few
minutes, every later run starts on a copy). Beside the join time and the
serving node's Get p99, it records the serving node's longest event-loop stall
during the join (``max_event_loop_lag_ms`` of its status, sampled every 10 ms
by the node) and its largest resident set (from /proc, every 50 ms).
"""

from __future__ import annotations

from rumor.bench.common import CLIENT_CORE, DATA_ROOT, Result, Target, pin_self, scratch_dir
from rumor.bench.join import VALUE_BYTES, one_join

KEYS = 10_000_000
QUICK_KEYS = 20_000


def run(*, quick: bool, runs: int) -> Result:
    keys = QUICK_KEYS if quick else KEYS
    pin_self(CLIENT_CORE)
    with scratch_dir("join-large") as root:
        sample = one_join(root, keys, timeout_s=600)
    idle = round(sample["idle_p99_ms"], 2)
    during = round(sample["join_p99_ms"], 2)
    lag = round(sample["server_loop_lag_max_ms"], 1)
    rss = round(sample["server_rss_max_mb"], 1)
    return Result(
        name="join-10m",
        quick=quick,
        runs=1,
        figures={
            "keys": keys,
            "join_to_holding_everything_s": round(sample["join_s"], 2),
            "server_get_p99_during_join_ms": during,
            "probe_timeouts_of_server": sample["probe_timeouts"],
            "server_loop_lag_max_during_join_ms": lag,
            "server_rss_max_mb": rss,
        },
        baseline={"server_get_p99_idle_ms": idle},
        ratios={"get p99 during join / idle": round(during / max(idle, 1e-6), 3)},
        targets=[
            Target("fresh node holds every record", sample["join_s"], "<=", 60.0, "s"),
            Target("server Get p99 during the join", during, "<=", max(25.0, 3 * idle), "ms"),
            Target("SWIM probes of the server timed out", sample["probe_timeouts"], "<=", 0),
            Target("server event-loop stall during the join", lag, "<=", 50.0, "ms"),
            Target("server resident set", rss, "<=", 300.0, "MB"),
        ],
        notes=[
            f"{keys:,} keys of {VALUE_BYTES} bytes, one run (the data is built once under"
            f" {DATA_ROOT}); server on core 0, joiner and reader on core {CLIENT_CORE}"
        ],
    )
