"""restart: a node holding 1,000,000 keys serves again quickly after a restart, in little memory.

One node (pinned to core 0) is loaded with 1,000,000 keys by BulkPut, then
stopped (SIGTERM) and started again on the same data; the time from starting
the process until it answers a Get of a key it holds is measured for each
restart. The baseline is the same restart of a node with an empty data
directory, in the same run. Peak RSS (VmHWM) is read from /proc for the node
that took the load and for each restarted node after it served reads and
writes.
"""

from __future__ import annotations

import os
import time

import grpc

from rumor.bench.common import (
    CLIENT_CORE,
    Result,
    Target,
    bulk_put,
    median,
    node_flags,
    peak_rss_mb,
    pid_of,
    pin_self,
    scratch_dir,
    start_node,
)
from rumor.experiments.lab.processes import NodeProcess
from rumor.v1 import kv_pb2

VALUE_BYTES = 100


def load(node: NodeProcess, keys: int) -> str:
    namespace: str = node.kv.CreateNamespace(kv_pb2.CreateNamespaceRequest(title="restart")).id
    bulk_put(node, namespace, [b"held-%08d" % i for i in range(keys)], os.urandom(VALUE_BYTES))
    return namespace


def time_to_serve(node: NodeProcess, namespace: str | None, key: bytes) -> float:
    """Start ``node`` and return the seconds until a Get of ``key`` answers."""
    started = time.perf_counter()
    node.start(timeout=120)
    deadline = started + 120
    while True:
        try:
            if namespace is None:
                node.kv.ListNamespaces(kv_pb2.ListNamespacesRequest(), timeout=5)
            else:
                answer = node.kv.Get(kv_pb2.GetRequest(namespace_id=namespace, key=key), timeout=5)
                assert answer.found, "a key the node held before the restart is missing"
            return time.perf_counter() - started
        except grpc.RpcError:
            if time.perf_counter() > deadline:
                raise
            time.sleep(0.001)


def exercise(node: NodeProcess, namespace: str, keys: int) -> None:
    """Reads of the whole key range and some writes, so peak RSS reflects serving."""
    step = max(1, keys // 2_000)
    for i in range(0, keys, step):
        node.kv.Get(kv_pb2.GetRequest(namespace_id=namespace, key=b"held-%08d" % i), timeout=10)
    for i in range(200):
        node.kv.Put(
            kv_pb2.PutRequest(namespace_id=namespace, key=b"new-%08d" % i, value=b"v"), timeout=10
        )


def run(*, quick: bool, runs: int) -> Result:
    runs = 1 if quick else runs
    keys = 20_000 if quick else 1_000_000
    pin_self(CLIENT_CORE)
    with scratch_dir("restart") as root:
        empty = start_node(root / "empty", *node_flags())
        empty.stop()
        baseline = []
        for _ in range(runs):
            baseline.append(time_to_serve(empty, None, b""))
            empty.stop()
        node = start_node(root / "full", *node_flags())
        try:
            started = time.perf_counter()
            namespace = load(node, keys)
            load_s = time.perf_counter() - started
            load_rss = peak_rss_mb(pid_of(node))
        finally:
            node.stop()
        restarts, serving_rss = [], []
        for _ in range(runs):
            restarts.append(time_to_serve(node, namespace, b"held-%08d" % (keys - 1)))
            try:
                exercise(node, namespace, keys)
                serving_rss.append(peak_rss_mb(pid_of(node)))
            finally:
                node.stop()
    restart_s = round(median(restarts), 3)
    empty_s = round(median(baseline), 3)
    peak = round(max(load_rss, *serving_rss), 1)
    return Result(
        name="restart",
        quick=quick,
        runs=runs,
        figures={
            "keys": keys,
            "load_keys_per_s": round(keys / load_s),
            "restart_to_serving_s": restart_s,
            "peak_rss_while_loading_mb": round(load_rss, 1),
            "peak_rss_after_restart_and_serving_mb": round(median(serving_rss), 1),
        },
        baseline={"empty_node_restart_to_serving_s": empty_s},
        ratios={"restart with keys / empty restart": round(restart_s / max(empty_s, 1e-6), 3)},
        targets=[
            Target("serving again after restart", restart_s, "<=", 2.0, "s"),
            Target("peak RSS", peak, "<=", 200, "MB"),
        ],
        notes=[
            f"{keys:,} keys of {VALUE_BYTES} bytes; node on core 0, client on core {CLIENT_CORE}"
        ],
    )
