"""history: an idle node, and its Gets, after 10,000,000 overwrites, against a fresh node.

Background work must follow the live data, not the history: a node whose
1,000 keys were each overwritten 10,000 times (10,000,000 writes, the log
entries of all but the last deleted and not yet compacted away) must idle
like a node that wrote them once, and serve Gets as fast.

The history data directory is built once by BulkPut (1,000 keys a call, 100-byte
values) and kept under .rumor/bench-data/; every run starts a node on a copy of
it. Each round, interleaved: a fresh node (the 1,000 keys written once) and the
history node, each alone (no seeds: also the "lone idle node" figure), pinned to
the server core. After start-up settles (``quiet``), the node's CPU over
``IDLE_S`` seconds with no client is its idle share of a core; then h2load
(the client core, 64 unary Gets in flight on one connection) reads one live key
for ``LOAD_S`` seconds, the body proven to answer the written value first.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

from rumor.bench.common import (
    CLIENT_CORE,
    DATA_ROOT,
    Result,
    Target,
    built_once,
    cpu_seconds,
    medians,
    node_flags,
    pid_of,
    pin_self,
    quiet,
    scratch_dir,
    start_node,
)
from rumor.bench.load_generators import GRPC_HEADERS, grpc_frame, h2load
from rumor.bench.peers_servers import grpc_unary
from rumor.experiments.lab.processes import NodeProcess
from rumor.v1 import kv_pb2

LIVE_KEYS = 1_000
OVERWRITES = 10_000_000
QUICK_OVERWRITES = 20_000
VALUE_BYTES = 100
IDLE_S = 10.0
LOAD_S = 10.0
IN_FLIGHT = 64
# Raised when a node leaves different data behind the same writes (version 2: a node
# alone drops each overwritten record's log entry as it writes, no backlog to drain).
DATASET_VERSION = 2


def _keys() -> list[bytes]:
    return [b"live-%04d" % index for index in range(LIVE_KEYS)]


def _write_rounds(node: NodeProcess, namespace: str, rounds: int) -> None:
    """Every live key written ``rounds`` times, a new value each round."""
    keys = _keys()
    for round_index in range(rounds):
        value = round_index.to_bytes(8, "big") + os.urandom(VALUE_BYTES - 8)
        items = [kv_pb2.PutRequest(key=key, value=value) for key in keys]
        node.kv.BulkPut(kv_pb2.BulkPutRequest(namespace_id=namespace, items=items), timeout=300)


def dataset(overwrites: int) -> tuple[Path, str]:
    """A data directory whose live keys were overwritten ``overwrites`` times in all
    (built once, then reused) and its namespace."""
    rounds = max(1, overwrites // LIVE_KEYS)
    name = f"history-{overwrites}-v{DATASET_VERSION}"
    return built_once(name, lambda node, ns: _write_rounds(node, ns, rounds))


def measure(node: NodeProcess, namespace: str, *, idle_s: float, load_s: float) -> dict[str, float]:
    """The node's idle share of a core, then its unary Get rate under h2load."""
    pid = pid_of(node)
    asyncio.run(quiet(pid, timeout_s=6 * idle_s))
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(idle_s)  # the measured interval itself: the node alone, no client
    idle_share = (cpu_seconds(pid) - before) / (time.monotonic() - started)
    key = _keys()[LIVE_KEYS // 2]
    get = kv_pb2.GetRequest(namespace_id=namespace, key=key).SerializeToString()
    answer = kv_pb2.GetResponse.FromString(grpc_unary(node.address, "/rumor.v1.KV/Get", get))
    if not answer.found or len(answer.value) != VALUE_BYTES:
        raise RuntimeError(f"the benchmark's Get does not find {key!r} on {node.address}")
    run = h2load(
        f"http://{node.address}/rumor.v1.KV/Get",
        seconds=load_s,
        in_flight=IN_FLIGHT,
        body=grpc_frame(get),
        headers=GRPC_HEADERS,
    )
    return {"idle_core_share": idle_share, "get_per_s": run.requests_per_s}


def one_round(root: Path, source: Path, namespace: str, *, quick: bool) -> dict[str, float]:
    idle_s, load_s = (1.0, 1.0) if quick else (IDLE_S, LOAD_S)
    figures: dict[str, float] = {}
    fresh = start_node(root / "fresh", *node_flags())
    try:
        fresh_namespace = fresh.kv.CreateNamespace(kv_pb2.CreateNamespaceRequest(title="f")).id
        _write_rounds(fresh, fresh_namespace, 1)
        for name, value in measure(fresh, fresh_namespace, idle_s=idle_s, load_s=load_s).items():
            figures[f"fresh_{name}"] = value
    finally:
        fresh.stop()
    shutil.copytree(source, root / "history")
    history = start_node(root / "history", *node_flags())
    try:
        for name, value in measure(history, namespace, idle_s=idle_s, load_s=load_s).items():
            figures[f"history_{name}"] = value
    finally:
        history.stop()
    return figures


def run(*, quick: bool, runs: int) -> Result:
    overwrites = QUICK_OVERWRITES if quick else OVERWRITES
    runs = 1 if quick else min(runs, 3)
    pin_self(CLIENT_CORE)
    source, namespace = dataset(overwrites)
    samples = []
    for index in range(runs):
        with scratch_dir(f"history-{index}") as root:
            samples.append(one_round(root, source, namespace, quick=quick))
    figures = medians(samples)
    history_idle = round(100 * figures["history_idle_core_share"], 2)
    fresh_idle = round(100 * figures["fresh_idle_core_share"], 2)
    get_ratio = round(figures["history_get_per_s"] / figures["fresh_get_per_s"], 3)
    return Result(
        name="history",
        quick=quick,
        runs=runs,
        figures={
            "overwrites": overwrites,
            "live_keys": LIVE_KEYS,
            "history_idle_percent_of_core": history_idle,
            "history_get_per_s": round(figures["history_get_per_s"]),
        },
        baseline={
            "fresh_idle_percent_of_core": fresh_idle,
            "fresh_get_per_s": round(figures["fresh_get_per_s"]),
        },
        ratios={"history Get / fresh Get": get_ratio},
        targets=[
            Target("idle node after the overwrites", history_idle, "<=", 2.0, "% of a core"),
            Target("Gets after the overwrites / fresh node", get_ratio, ">=", 0.95),
            Target("lone idle node", fresh_idle, "<=", 2.0, "% of a core"),
        ],
        notes=[
            f"{overwrites:,} overwrites of {LIVE_KEYS:,} keys ({VALUE_BYTES}-byte values),"
            f" built once under {DATA_ROOT}; each node alone on core 0, h2load on core"
            f" {CLIENT_CORE} with {IN_FLIGHT} unary Gets in flight"
        ],
    )
