"""loop-steps: the longest synchronous step each many-record task takes on the event loop.

A node runs anti-entropy answers, audit answers, list pages and sweeps on its
event loop, so the longest single step of each is a stall every other RPC and
SWIM probe waits through. This benchmark opens a replica in-process on a real
RocksDB holding N keys (100-byte values, a tenth of them then deleted, in one
contiguous range so a list over them walks tombstones) and times one step of
each task as the node runs it: an anti-entropy answer to an empty digest with
the engine's entry budget, one audit slice with every bucket differing, one
list slice over the tombstones and one sweep slice. The baseline, in the same
run on the same store, is the work those steps did before they were bounded:
walking the whole log tail, scanning every header, reading the whole
tombstone range. Target: no step over 50 ms, at any size.

``RUMOR_BENCH_LOOP_KEYS=10000000 rumor bench loop-steps --runs 3`` measures
other sizes (comma-separated) instead of 100,000 and 1,000,000.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from rumor.bench.common import Result, Target, median, scratch_dir
from rumor.node.core import audit
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.replica.replica import Replica, Write
from rumor.node.server.operations import LIST_SCAN_SLICE
from rumor.node.storage.rocks import RocksStore
from rumor.node.storage.store import KV, LOG

VALUE_BYTES = 100
NAMESPACE = bytes(range(16))
STEP_LIMIT_MS = 50.0
SIZES_VARIABLE = "RUMOR_BENCH_LOOP_KEYS"  # e.g. 10000000: other sizes than 100k and 1M
WALL_MS = 1_700_000_000_000


def _load(path: Path, keys: int) -> tuple[RocksStore, Replica]:
    store = RocksStore(path)
    replica = Replica(store, new_node_id=0x0A0A, wall_ms=WALL_MS)
    value = os.urandom(VALUE_BYTES)
    batch = 10_000
    for start in range(0, keys, batch):
        replica.write_many(
            [Write(NAMESPACE, b"k%09d" % i, value) for i in range(start, min(keys, start + batch))],
            WALL_MS,
        )
    deleted = keys // 10
    for start in range(0, deleted, batch):
        replica.write_many(
            [
                Write(NAMESPACE, b"k%09d" % i, tombstone=True)
                for i in range(start, min(deleted, start + batch))
            ],
            WALL_MS,
        )
    store.sync_wal()
    replica.mark_durable(replica.written_ticket)
    return store, replica


def _ms(step: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        step()
        times.append((time.perf_counter() - started) * 1000)
    return median(times)


def measure(replica: Replica, store: RocksStore, runs: int) -> dict[str, float]:
    config = ProtocolConfig.lan()
    every_bucket = list(range(audit.BUCKETS))
    deleted_prefix = b"k0"  # the first keys: all deleted when keys <= 10^9
    return {
        "answer_ms": _ms(
            lambda: replica.delta_for({}, config.delta_budget_bytes, config.answer_entry_budget),
            runs,
        ),
        "audit_slice_ms": _ms(
            lambda: replica.audit_entries(every_bucket, b"", config.audit_scan_records), runs
        ),
        "list_slice_ms": _ms(
            lambda: replica.list_page(
                NAMESPACE, deleted_prefix, None, 1, 0, scan_budget=LIST_SCAN_SLICE
            ),
            runs,
        ),
        "sweep_slice_ms": _ms(
            lambda: replica.sweep(b"", 0, ProtocolConfig.lan().sweep_slice_records), runs
        ),
        "baseline_log_tail_ms": _ms(lambda: sum(1 for _ in store.scan(LOG, b"")), 1),
        "baseline_header_scan_ms": _ms(lambda: sum(1 for _ in store.scan(KV, b"")), 1),
        "baseline_list_ms": _ms(
            lambda: replica.list_page(NAMESPACE, deleted_prefix, None, 1, 0), 1
        ),
    }


def run(*, quick: bool, runs: int) -> Result:
    runs = 1 if quick else runs
    sizes = [20_000] if quick else [100_000, 1_000_000]
    if not quick and os.environ.get(SIZES_VARIABLE):
        sizes = [int(size) for size in os.environ[SIZES_VARIABLE].split(",")]
    result = Result("loop-steps", quick, runs)
    for keys in sizes:
        with scratch_dir("loop-steps") as root:
            store, replica = _load(root / "db", keys)
            try:
                figures = measure(replica, store, runs)
            finally:
                store.close()
        label = f"{keys:,} keys"
        result.figures[label] = {
            k: round(v, 2) for k, v in figures.items() if not k.startswith("baseline")
        }
        result.baseline[label] = {
            k: round(v, 2) for k, v in figures.items() if k.startswith("baseline")
        }
        longest = max(v for k, v in figures.items() if not k.startswith("baseline"))
        result.ratios[f"longest step / full header scan, {label}"] = round(
            longest / max(figures["baseline_header_scan_ms"], 1e-6), 4
        )
        result.targets.append(
            Target(f"longest step, {label}", round(longest, 2), "<=", STEP_LIMIT_MS, "ms")
        )
    result.notes.append(
        "one step = what the node runs between two awaits; the baseline is the unbounded"
        " work the same task did in one step before"
    )
    return result
