"""replication: how fast a write reaches every node, and what applying a pushed record costs.

1. Convergence. Three nodes on 127.0.0.1 (default timers: gossip every 10 ms,
   fanout 4; nodes and client unpinned); an asyncio client writes to node 1 at
   a steady rate while a Watch stream on every node reports when each node
   applied each write. A write's
   replication time is the last node's apply time minus the time node 1 applied
   it (both from the nodes' monotonic clocks, comparable on one host). The
   baseline is the client's own Put latency (acknowledgement) in the same run.
   The same windows run again on three nodes started with ``--workers 2``: the
   writes and the Watch streams then go through a worker to each node's owner.
2. Apply cost. One node (pinned to core 0) receives Push calls from this
   process acting as a peer, with batches of 1 to 1,000 records; its CPU time
   per applied record is compared with its CPU time per served Put (64 in
   flight), measured in the same run.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import grpc

from rumor.bench.common import (
    CLIENT_CORE,
    Result,
    Target,
    cpu_seconds,
    median,
    node_flags,
    percentile,
    pid_of,
    pin_self,
    scratch_dir,
    start_cluster,
    start_node,
)
from rumor.bench.put_get import load
from rumor.node.core.hlc import pack
from rumor.node.core.record import RecordHeader
from rumor.v1 import kv_pb2, kv_pb2_grpc, replication_pb2, replication_pb2_grpc

RATE_PER_S = 500
VALUE_BYTES = 100
# Worker processes per node in the convergence windows run with workers.
WORKERS = 2
BATCH_SIZES = (1, 10, 30, 100, 300, 1000)
FAKE_PEER = 0x0BE1_C4A7_0000_0001
QUIET_TIMERS = (
    # The fake peer never answers probes or exchanges: keep the node from trying.
    "--probe-interval-ms", "3600000",
    "--anti-entropy-interval-ms", "3600000",
    "--audit-interval-ms", "3600000",
)  # fmt: skip


# ---- 1. convergence -------------------------------------------------------------


async def convergence_window(
    addresses: list[str], namespace: str, window: int, seconds: float
) -> dict[str, float]:
    """One window of writes at RATE_PER_S; replication and ack latencies in ms."""
    prefix = b"w%02d-" % window
    channels = [grpc.aio.insecure_channel(address) for address in addresses]
    stubs = [kv_pb2_grpc.KVStub(channel) for channel in channels]  # type: ignore[no-untyped-call]
    count = int(RATE_PER_S * seconds)
    applied: list[dict[bytes, int]] = [{} for _ in addresses]
    streams = [
        stub.Watch(kv_pb2.WatchRequest(namespace_id=namespace, prefix=prefix)) for stub in stubs
    ]

    async def watcher(index: int) -> None:
        seen = applied[index]
        async for event in streams[index]:
            seen[event.key] = event.applied_monotonic_ns
            if len(seen) >= count:
                return

    watchers = [asyncio.create_task(watcher(i)) for i in range(len(addresses))]
    await asyncio.sleep(0.2)  # the streams are open on every node
    acks: list[float] = []
    interval = 1 / RATE_PER_S
    start = time.perf_counter()
    value = os.urandom(VALUE_BYTES)

    async def put(key: bytes) -> None:
        sent = time.perf_counter()
        await stubs[0].Put(kv_pb2.PutRequest(namespace_id=namespace, key=key, value=value))
        acks.append((time.perf_counter() - sent) * 1000)

    puts = []
    for i in range(count):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        puts.append(asyncio.create_task(put(prefix + b"%08d" % i)))
    await asyncio.gather(*puts)
    try:
        await asyncio.wait_for(asyncio.gather(*watchers), timeout=60)
    finally:
        for stream in streams:
            stream.cancel()
        for channel in channels:
            await channel.close(None)
    latencies = [(max(seen[key] for seen in applied) - applied[0][key]) / 1e6 for key in applied[0]]
    return {
        "writes": len(latencies),
        "replication_p50_ms": round(percentile(latencies, 0.50), 2),
        "replication_p99_ms": round(percentile(latencies, 0.99), 2),
        "replication_max_ms": round(max(latencies), 2),
        "ack_p50_ms": round(percentile(acks, 0.50), 2),
        "ack_p99_ms": round(percentile(acks, 0.99), 2),
    }


async def convergence(addresses: list[str], windows: int, seconds: float) -> list[dict[str, float]]:
    channel = grpc.aio.insecure_channel(addresses[0])
    stub = kv_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
    namespace = (await stub.CreateNamespace(kv_pb2.CreateNamespaceRequest(title="replication"))).id
    await channel.close(None)
    for address in addresses[1:]:  # the namespace itself replicates first
        async with grpc.aio.insecure_channel(address) as other:
            follower = kv_pb2_grpc.KVStub(other)  # type: ignore[no-untyped-call]
            deadline = time.monotonic() + 30
            while True:
                try:
                    await follower.GetNamespace(kv_pb2.GetNamespaceRequest(namespace_id=namespace))
                    break
                except grpc.aio.AioRpcError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.01)
    return [await convergence_window(addresses, namespace, w, seconds) for w in range(windows)]


def _converge(root: Path, runs: int, seconds: float, *flags: str) -> list[dict[str, float]]:
    """``runs`` convergence windows on a fresh 3-node cluster started with ``flags``."""
    nodes = start_cluster(root, 3, *node_flags(), *flags, cores=[None])
    try:
        return asyncio.run(convergence([n.address for n in nodes], runs, seconds))
    finally:
        for node in nodes:
            node.stop()


def _medians(windows: list[dict[str, float]]) -> dict[str, float]:
    return {
        key: round(median([w[key] for w in windows]), 2) for key in windows[0] if key != "writes"
    }


# ---- 2. apply cost --------------------------------------------------------------


def push_request(
    namespace: bytes, first_seq: int, size: int, value: bytes
) -> replication_pb2.PushRequest:
    now_ms = int(time.time() * 1000)
    records = []
    for offset in range(size):
        seq = first_seq + offset
        header = RecordHeader(
            hlc=pack(now_ms, offset), origin=FAKE_PEER, seq=seq, value_length=len(value)
        )
        records.append(
            replication_pb2.Record(
                namespace=namespace, key=b"pushed-%010d" % seq, header=header.encode(), value=value
            )
        )
    envelope = replication_pb2.Envelope(
        sender=FAKE_PEER, boot_nonce=1, hlc=pack(now_ms, 0), address="127.0.0.1:9", name="bench"
    )
    return replication_pb2.PushRequest(envelope=envelope, records=records)


async def apply_cost(
    address: str, pid: int, records_per_size: int, put_seconds: float
) -> dict[str, float]:
    channel = grpc.aio.insecure_channel(address)
    kv = kv_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
    replication = replication_pb2_grpc.ReplicationStub(channel)  # type: ignore[no-untyped-call]
    namespace_id = (await kv.CreateNamespace(kv_pb2.CreateNamespaceRequest(title="apply"))).id
    namespace = bytes.fromhex(namespace_id)
    value = os.urandom(VALUE_BYTES)

    def put_request(i: int) -> kv_pb2.PutRequest:
        return kv_pb2.PutRequest(namespace_id=namespace_id, key=b"put-%08d" % i, value=value)

    served = await load(kv.Put, put_request, pid, put_seconds, warmup=put_seconds / 5)
    figures = {"put_server_cpu_us": round(served.cpu_us_per_request, 1)}
    seq = 1
    for size in BATCH_SIZES:
        batches = max(4, records_per_size // size)
        requests = []
        for _ in range(batches):
            requests.append(push_request(namespace, seq, size, value))
            seq += size
        pending = list(reversed(requests))

        async def pusher(pending: list[replication_pb2.PushRequest]) -> None:
            while pending:
                answer = await replication.Push(pending.pop(), timeout=60)
                assert not answer.not_ready

        cpu_before = cpu_seconds(pid)
        await asyncio.gather(*(pusher(pending) for _ in range(4)))
        cpu = cpu_seconds(pid) - cpu_before
        figures[f"apply_cpu_us_per_record_batch_{size}"] = round(cpu / (batches * size) * 1e6, 1)
    await channel.close(None)
    return figures


# ---- the benchmark --------------------------------------------------------------


def run(*, quick: bool, runs: int) -> Result:
    runs = 1 if quick else runs
    seconds = 1.0 if quick else 10.0
    pin_self(None)
    with scratch_dir("replication") as root:
        windows = _converge(root / "cluster", runs, seconds)
        with_workers = _converge(root / "workers", runs, seconds, "--workers", str(WORKERS))
        # The cluster and its client share both cores; the apply cost is measured
        # with the node on core 0 and this process, its peer, on core 1.
        pin_self(CLIENT_CORE)
        costs = []
        for index in range(runs):
            node = start_node(root / f"apply-{index}", *node_flags(), *QUIET_TIMERS)
            try:
                costs.append(
                    asyncio.run(
                        apply_cost(
                            node.address,
                            pid_of(node),
                            2_000 if quick else 20_000,
                            0.5 if quick else 3.0,
                        )
                    )
                )
            finally:
                node.stop()
    convergence_figures = _medians(windows)
    workers_figures = {
        f"workers{WORKERS}_{key}": value for key, value in _medians(with_workers).items()
    }
    cost = {key: round(median([c[key] for c in costs]), 1) for key in costs[0]}
    put_cpu = cost.pop("put_server_cpu_us")
    ack = {key: convergence_figures.pop(key) for key in ("ack_p50_ms", "ack_p99_ms")}
    share = {
        f"apply cpu / put cpu, batch {size}": round(
            cost[f"apply_cpu_us_per_record_batch_{size}"] / put_cpu, 3
        )
        for size in BATCH_SIZES
    }
    worst_from_30 = max(
        share[f"apply cpu / put cpu, batch {size}"] for size in BATCH_SIZES if size >= 30
    )
    replication_p50 = convergence_figures["replication_p50_ms"]
    return Result(
        name="replication",
        quick=quick,
        runs=runs,
        figures={**convergence_figures, **workers_figures, **cost},
        baseline={**ack, "put_server_cpu_us": put_cpu},
        ratios={
            "replication p50 / ack p50": round(replication_p50 / max(0.001, ack["ack_p50_ms"]), 3),
            **share,
        },
        targets=[
            Target(
                "time until all 3 hold a write, p50",
                convergence_figures["replication_p50_ms"],
                "<=",
                30,
                "ms",
            ),
            Target(
                "time until all 3 hold a write, p99",
                convergence_figures["replication_p99_ms"],
                "<=",
                100,
                "ms",
            ),
            Target(
                f"the same, nodes with {WORKERS} workers each, p50",
                workers_figures[f"workers{WORKERS}_replication_p50_ms"],
                "<=",
                30,
                "ms",
            ),
            Target(
                f"the same, nodes with {WORKERS} workers each, p99",
                workers_figures[f"workers{WORKERS}_replication_p99_ms"],
                "<=",
                100,
                "ms",
            ),
            Target("apply CPU / served Put CPU at >= 30 per batch", worst_from_30, "<=", 0.10),
        ],
        notes=[
            f"{RATE_PER_S} writes/s for {seconds} s per window, {runs} windows, 3 nodes"
            f" unpinned on {os.cpu_count()} cores; apply cost: one node on core 0",
            f"workers{WORKERS}_*: the same windows on 3 nodes started with --workers"
            f" {WORKERS} (writes and Watch through a worker, {3 * (WORKERS + 1)} processes)",
        ],
    )
