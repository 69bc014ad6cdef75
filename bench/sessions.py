"""sessions: what a session read costs on a caught-up node, and how long it waits after a write.

1. CPU. One node pinned to core 0, the client on core 1, 64 in-flight asyncio
   unary Gets of keys the node holds: plain, and with ``after`` set to a token
   the node covers (a session that wrote through this node), alternating which
   goes first from run to run and letting the node go quiet in between. The
   node's CPU per read (user + system, /proc) of the two, in the same run.
2. Read after write. Three nodes on 127.0.0.1 (default timers, unpinned), a
   steady stream of writes on node 1, each followed at once by a read of the
   same key on node 2: with the write's token (a session) for even writes, the
   wait measured from sending the read to its answer; plain for odd writes,
   counting how often it missed the write (what the session buys). The
   baseline is the time until all three nodes hold a write (the replication
   benchmark's measurement, run on the same cluster just before).
"""

from __future__ import annotations

import asyncio
import os
import time

import grpc

from rumor.bench.common import (
    CLIENT_CORE,
    Result,
    Target,
    bulk_put,
    median,
    medians,
    node_flags,
    percentile,
    pid_of,
    pin_self,
    quiet,
    scratch_dir,
    start_cluster,
    start_node,
)
from rumor.bench.put_get import load
from rumor.bench.replication import convergence
from rumor.experiments.lab.processes import NodeProcess
from rumor.v1 import kv_pb2, kv_pb2_grpc

VALUE_BYTES = 100
HELD_KEYS = 10_000
WRITES_PER_S = 100  # read after write: a steady stream, one write and its read at a time


# ---- 1. CPU per read ------------------------------------------------------------


def _held(node: NodeProcess) -> tuple[str, str]:
    """A namespace holding ``HELD_KEYS`` keys on ``node``, and a token it covers."""
    namespace = node.kv.CreateNamespace(kv_pb2.CreateNamespaceRequest(title="sessions")).id
    value = os.urandom(VALUE_BYTES)
    bulk_put(node, namespace, [b"held-%08d" % i for i in range(HELD_KEYS)], value)
    written = node.kv.Put(kv_pb2.PutRequest(namespace_id=namespace, key=b"token", value=value))
    return namespace, written.session


async def read_cpu(
    node: NodeProcess, seconds: float, warmup: float, index: int
) -> dict[str, float]:
    """Server CPU per plain and per session Get, in one run (order alternating by ``index``)."""
    namespace, token = _held(node)
    pid = pid_of(node)
    channel = grpc.aio.insecure_channel(node.address)
    stub = kv_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]

    def plain(i: int) -> kv_pb2.GetRequest:
        return kv_pb2.GetRequest(namespace_id=namespace, key=b"held-%08d" % (i % HELD_KEYS))

    def session(i: int) -> kv_pb2.GetRequest:
        request = plain(i)
        request.after = token
        return request

    kinds = [("plain", plain), ("session", session)]
    figures: dict[str, float] = {}
    try:
        for name, make in kinds if index % 2 == 0 else kinds[::-1]:
            await quiet(pid)
            phase = await load(stub.Get, make, pid, seconds, warmup)
            figures.update(phase.figures(f"{name}_get"))
    finally:
        await channel.close(None)
    return figures


# ---- 2. read after write ---------------------------------------------------------


async def read_after_write(addresses: list[str], count: int) -> dict[str, float]:
    """``count`` writes on the first node, each read at once on the second."""
    writer_channel = grpc.aio.insecure_channel(addresses[0])
    reader_channel = grpc.aio.insecure_channel(addresses[1])
    writer = kv_pb2_grpc.KVStub(writer_channel)  # type: ignore[no-untyped-call]
    reader = kv_pb2_grpc.KVStub(reader_channel)  # type: ignore[no-untyped-call]
    title = f"raw-{os.urandom(4).hex()}"  # a run of its own on a cluster the runs share
    namespace = (await writer.CreateNamespace(kv_pb2.CreateNamespaceRequest(title=title))).id
    value = os.urandom(VALUE_BYTES)
    waits: list[float] = []
    plain: list[float] = []
    missed = 0
    deadline = time.monotonic() + 30
    while True:  # the namespace itself reaches the reader first
        try:
            await reader.GetNamespace(kv_pb2.GetNamespaceRequest(namespace_id=namespace))
            break
        except grpc.aio.AioRpcError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)
    start = time.perf_counter()
    try:
        for i in range(count):
            delay = start + i / WRITES_PER_S - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            key = b"raw-%08d" % i
            put = await writer.Put(kv_pb2.PutRequest(namespace_id=namespace, key=key, value=value))
            request = kv_pb2.GetRequest(namespace_id=namespace, key=key)
            if i % 2 == 0:
                request.after = put.session
            sent = time.perf_counter()
            got = await reader.Get(request, timeout=5)
            took = (time.perf_counter() - sent) * 1000
            if i % 2 == 0:
                if not got.found:  # a session never reads older data: a bug, not a figure
                    raise AssertionError(f"a session read missed its own write {key!r}")
                waits.append(took)
            else:
                plain.append(took)
                missed += not got.found
    finally:
        await writer_channel.close(None)
        await reader_channel.close(None)
    return {
        "session_read_wait_p50_ms": round(percentile(waits, 0.50), 3),
        "session_read_wait_p99_ms": round(percentile(waits, 0.99), 3),
        "plain_read_p50_ms": round(percentile(plain, 0.50), 3),
        "plain_read_missed_write_share": round(missed / max(1, len(plain)), 3),
    }


# ---- the benchmark --------------------------------------------------------------


def run(*, quick: bool, runs: int) -> Result:
    runs = 1 if quick else runs
    seconds, warmup = (0.5, 0.2) if quick else (5.0, 1.0)
    writes = 100 if quick else 2_000
    with scratch_dir("sessions") as root:
        pin_self(CLIENT_CORE)
        cpu = []
        for index in range(runs):
            node = start_node(root / f"cpu-{index}", *node_flags())
            try:
                cpu.append(asyncio.run(read_cpu(node, seconds, warmup, index)))
            finally:
                node.stop()
        pin_self(None)
        nodes = start_cluster(root / "cluster", 3, *node_flags(), cores=[None])
        try:
            addresses = [n.address for n in nodes]
            windows = asyncio.run(convergence(addresses, runs, 1.0 if quick else 5.0))
            reads = [asyncio.run(read_after_write(addresses, writes)) for _ in range(runs)]
        finally:
            for node in nodes:
                node.stop()
    cost = medians(cpu)
    waited = medians(reads)
    replication_p50 = round(median([w["replication_p50_ms"] for w in windows]), 3)
    session_cpu = cost["session_get_server_cpu_us_per_request"]
    plain_cpu = cost["plain_get_server_cpu_us_per_request"]
    cpu_ratio = round(session_cpu / max(0.001, plain_cpu), 3)
    wait_p50 = waited["session_read_wait_p50_ms"]
    return Result(
        name="sessions",
        quick=quick,
        runs=runs,
        figures={
            **{k: v for k, v in cost.items() if k.startswith("session_")},
            "session_read_wait_p50_ms": wait_p50,
            "session_read_wait_p99_ms": waited["session_read_wait_p99_ms"],
        },
        baseline={
            **{k: v for k, v in cost.items() if k.startswith("plain_")},
            "replication_p50_ms": replication_p50,
            "plain_read_p50_ms": waited["plain_read_p50_ms"],
            "plain_read_missed_write_share": waited["plain_read_missed_write_share"],
        },
        ratios={
            "session get cpu / plain get cpu": cpu_ratio,
            "session read wait p50 / replication p50": round(
                wait_p50 / max(0.001, replication_p50), 3
            ),
        },
        targets=[
            Target("session get CPU / plain get CPU (caught up)", cpu_ratio, "<=", 1.05),
            Target(
                "session read on B after a write on A, wait p50",
                wait_p50,
                "<=",
                replication_p50,
                "ms",
            ),
            Target(
                "session read on B after a write on A, wait p99",
                waited["session_read_wait_p99_ms"],
                "<=",
                100,
                "ms",
            ),
        ],
        notes=[
            f"CPU: one node on core 0, 64 in-flight Gets of {HELD_KEYS:,} held keys for"
            f" {seconds} s each; read after write: {writes} writes at {WRITES_PER_S}/s on"
            f" node 1, each read at once on node 2 (half in a session), 3 nodes unpinned on"
            f" {os.cpu_count()} cores; {runs} runs",
        ],
    )
