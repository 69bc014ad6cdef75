"""join: a fresh node holds every record of a 1,000,000-key node within seconds, by snapshot.

One serving node (pinned to core 0) holds 1,000,000 keys of 100-byte values;
the data directory is built once (BulkPut, then stopped) and kept under
.rumor/bench-data/, and each run starts on a copy of it. A fresh node (core
1) joins through it; the join time runs from starting the joiner's process
until it holds as many records as the serving node with the same audit
digest. Meanwhile a client (core 1) reads random keys from the serving node.
The baseline is the same serving node idle, in the same run: its Get p99
with no join going on. SWIM probes of the serving node that timed out are
counted from the joiner's log.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import threading
import time
from pathlib import Path

import grpc

from rumor.bench.common import (
    CLIENT_CORE,
    DATA_ROOT,
    Result,
    Target,
    built_once,
    bulk_put,
    can_pin,
    median,
    node_flags,
    percentile,
    pin_prefix,
    pin_self,
    scratch_dir,
    start_node,
    status,
)
from rumor.experiments.lab.processes import NodeProcess
from rumor.v1 import kv_pb2

VALUE_BYTES = 100
IDLE_S = 3.0


def dataset(keys: int) -> tuple[Path, str]:
    """The serving node's data directory with ``keys`` keys (built once) and its namespace."""

    def write(node: NodeProcess, namespace: str) -> None:
        bulk_put(node, namespace, [_key(i) for i in range(keys)], os.urandom(VALUE_BYTES))

    return built_once(f"join-{keys}", write)


def _key(index: int) -> bytes:
    return b"held-%08d" % index


class Reader:
    """Gets of random keys from one node, back to back, their latencies kept by phase."""

    def __init__(self, node: NodeProcess, namespace: str, keys: int) -> None:
        self.node, self.namespace, self.keys = node, namespace, keys
        self.phase = "idle"
        self.latencies: dict[str, list[float]] = {"idle": [], "join": []}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = random.Random(7)
        stub = self.node.kv
        while not self.stopped.is_set():
            request = kv_pb2.GetRequest(
                namespace_id=self.namespace, key=_key(rng.randrange(self.keys))
            )
            started = time.perf_counter()
            answer = stub.Get(request, timeout=10)
            elapsed = time.perf_counter() - started
            assert answer.found
            if self.phase in self.latencies:
                self.latencies[self.phase].append(elapsed)
            time.sleep(0.002)


def _holds_everything(joiner: NodeProcess, records: int, digest: int) -> bool:
    try:
        answer = status(joiner)
    except grpc.RpcError:
        return False  # restarting to install the copy
    return answer.ready and answer.records_held == records and answer.audit_digest == digest


def _probe_timeouts(log: str, peer: str) -> int:
    timeouts = 0
    for line in log.splitlines():
        if '"replication.call_failed"' in line and '"Ping"' in line and peer in line:
            event = json.loads(line)
            if event.get("cause") == "deadline":
                timeouts += 1 + int(event.get("suppressed", 0))
    return timeouts


class RssSampler:
    """The largest resident set of one process, sampled every 50 ms from /proc."""

    def __init__(self, pid: int) -> None:
        self.path = Path(f"/proc/{pid}/status")
        self.max_kb = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(0.05):
            try:
                text = self.path.read_text()
            except OSError:
                return
            for line in text.splitlines():
                if line.startswith("VmRSS:"):
                    self.max_kb = max(self.max_kb, int(line.split()[1]))

    def stop(self) -> float:
        """Stop sampling; the maximum in MiB."""
        self.stopped.set()
        self.thread.join(timeout=5)
        return self.max_kb / 1024


def one_join(root: Path, keys: int, timeout_s: float = 120) -> dict[str, float]:
    source, namespace = dataset(keys)
    shutil.copytree(source, root / "server")
    server = start_node(root / "server", *node_flags(), "--snapshot-min-records", "1000")
    joiner = NodeProcess(
        root / "joiner",
        *node_flags(),
        "--log-level",
        "info",
        "--seeds",
        server.address,
        prefix=pin_prefix(CLIENT_CORE) if can_pin() else [],
    )
    reader = Reader(server, namespace, keys)
    assert server.process is not None
    rss = RssSampler(server.process.pid)
    try:
        expected = status(server)
        lag_before_ms = expected.max_event_loop_lag_ms
        reader.thread.start()
        time.sleep(IDLE_S)
        reader.phase = "join"
        started = time.perf_counter()
        joiner.start(timeout=60)
        deadline = started + timeout_s
        while not _holds_everything(joiner, expected.records_held, expected.audit_digest):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the joiner never caught up; its log:\n{joiner.log()[-3000:]}")
            time.sleep(0.01)
        join_s = time.perf_counter() - started
        reader.phase = "after"
        log = joiner.log()
        lag_after_ms = status(server).max_event_loop_lag_ms
    finally:
        rss_mb = rss.stop()
        reader.stopped.set()
        reader.thread.join(timeout=15)
        joiner.stop()
        server.stop()
    assert "node.bootstrapped_by_snapshot" in log, "the joiner did not bootstrap by snapshot"
    return {
        "join_s": join_s,
        "idle_p99_ms": percentile(reader.latencies["idle"], 0.99) * 1000,
        "join_p99_ms": percentile(reader.latencies["join"], 0.99) * 1000,
        "probe_timeouts": float(_probe_timeouts(log, server.address)),
        # The longest stall of the serving node's loop during the join (0: none beyond
        # what start-up had already reached), and its largest resident set.
        "server_loop_lag_max_ms": lag_after_ms if lag_after_ms > lag_before_ms else 0.0,
        "server_rss_max_mb": rss_mb,
    }


def run(*, quick: bool, runs: int) -> Result:
    runs = 1 if quick else min(runs, 3)
    keys = 20_000 if quick else 1_000_000
    pin_self(CLIENT_CORE)
    samples = []
    for _ in range(runs):
        with scratch_dir("join") as root:
            samples.append(one_join(root, keys))
    join_s = round(median([s["join_s"] for s in samples]), 3)
    idle = round(median([s["idle_p99_ms"] for s in samples]), 2)
    during = round(median([s["join_p99_ms"] for s in samples]), 2)
    probes = max(s["probe_timeouts"] for s in samples)
    return Result(
        name="join",
        quick=quick,
        runs=runs,
        figures={
            "keys": keys,
            "join_to_holding_everything_s": join_s,
            "server_get_p99_during_join_ms": during,
            "probe_timeouts_of_server": probes,
        },
        baseline={"server_get_p99_idle_ms": idle},
        ratios={"get p99 during join / idle": round(during / max(idle, 1e-6), 3)},
        targets=[
            Target("fresh node holds every record", join_s, "<=", 10.0, "s"),
            Target("server Get p99 during the join", during, "<=", max(25.0, 3 * idle), "ms"),
            Target("SWIM probes of the server timed out", probes, "<=", 0),
        ],
        notes=[
            f"{keys:,} keys of {VALUE_BYTES} bytes, data built once under {DATA_ROOT};"
            f" server on core 0, joiner and reader on core {CLIENT_CORE}"
        ],
    )
