"""watchers: a 10,000-key BulkPut with 512 Watch streams that never read, against none.

One node (durability fsync, pinned to core 0) takes BulkPuts of 10,000 keys
(100-byte values, requests built before the clock starts, one in flight)
from an asyncio client on core 1: first with no watcher, then with 512
Watch streams on the namespace (prefix empty: every write matches every
watcher) opened over 8 connections (64 each, the per-connection bound) that
never read a message, and finally with 512 watchers of a prefix no key has.
The figure is the median BulkPut latency of each; the target is the
unread-watcher latency at most twice the one without watchers: a write pays
O(1) for watchers, and the fan-out to their queues runs in slices off the
write path.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import grpc

from rumor.bench.common import (
    BULK_PAIRS,
    CLIENT_CORE,
    Result,
    Target,
    median,
    medians,
    node_flags,
    pin_self,
    scratch_dir,
    start_node,
)
from rumor.v1 import kv_pb2, kv_pb2_grpc

VALUE_BYTES = 100
WATCHERS = 512
CONNECTIONS = 8  # 64 watchers each: the per-connection bound


async def bulk_put_ms(stub: kv_pb2_grpc.KVStub, namespace: str, batches: int, tag: str) -> float:
    """The median latency of ``batches`` BulkPuts of fresh keys, one at a time."""
    value = os.urandom(VALUE_BYTES)
    requests = [
        kv_pb2.BulkPutRequest(
            namespace_id=namespace,
            items=[
                kv_pb2.PutRequest(key=b"%s-%04d-%06d" % (tag.encode(), batch, i), value=value)
                for i in range(BULK_PAIRS)
            ],
        )
        for batch in range(batches)
    ]
    latencies = []
    for request in requests:
        started = time.perf_counter()
        response = await stub.BulkPut(request, timeout=300)
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.successful_key_count == BULK_PAIRS
    return median(latencies)


async def open_watchers(
    channels: list[grpc.aio.Channel], namespace: str, prefix: bytes
) -> list[grpc.aio.UnaryStreamCall[kv_pb2.WatchRequest, kv_pb2.WatchEvent]]:
    """``WATCHERS`` Watch streams, registered on the node (initial metadata), never read."""
    calls = []
    for index in range(WATCHERS):
        stub = kv_pb2_grpc.KVStub(channels[index % len(channels)])  # type: ignore[no-untyped-call]
        call = stub.Watch(kv_pb2.WatchRequest(namespace_id=namespace, prefix=prefix))
        await call.initial_metadata()
        calls.append(call)
    return calls


async def one_run(address: str, batches: int) -> dict[str, float]:
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    channels = [grpc.aio.insecure_channel(address, options=options) for _ in range(CONNECTIONS)]
    writer = grpc.aio.insecure_channel(address, options=options)
    stub = kv_pb2_grpc.KVStub(writer)  # type: ignore[no-untyped-call]
    try:
        namespace = (await stub.CreateNamespace(kv_pb2.CreateNamespaceRequest(title="w"))).id
        figures = {"no_watchers_ms": await bulk_put_ms(stub, namespace, batches, "none")}
        calls = await open_watchers(channels, namespace, b"")
        figures["unread_watchers_ms"] = await bulk_put_ms(stub, namespace, batches, "all")
        for call in calls:
            call.cancel()
        calls = await open_watchers(channels, namespace, b"no-key-has-this-prefix")
        figures["unmatched_watchers_ms"] = await bulk_put_ms(stub, namespace, batches, "other")
        for call in calls:
            call.cancel()
        return figures
    finally:
        for channel in (*channels, writer):
            await channel.close(None)


def run(*, quick: bool, runs: int) -> Result:
    batches = 2 if quick else 5
    runs = 1 if quick else runs
    pin_self(CLIENT_CORE)
    samples = []
    with scratch_dir("watchers") as root:
        for index in range(runs):
            node = start_node(Path(root) / f"node-{index}", *node_flags("fsync"))
            try:
                samples.append(asyncio.run(one_run(node.address, batches)))
            finally:
                node.stop()
    figures = medians(samples)
    baseline = {"no_watchers_ms": figures.pop("no_watchers_ms")}
    ratio = round(figures["unread_watchers_ms"] / baseline["no_watchers_ms"], 2)
    return Result(
        name="watchers",
        quick=quick,
        runs=runs,
        figures=figures,
        baseline=baseline,
        ratios={
            "unread watchers / none": ratio,
            "unmatched watchers / none": round(
                figures["unmatched_watchers_ms"] / baseline["no_watchers_ms"], 2
            ),
        },
        targets=[Target("BulkPut with 512 unread watchers / without", ratio, "<=", 2.0, "x")],
        notes=[
            f"{batches} BulkPuts of {BULK_PAIRS:,} keys ({VALUE_BYTES}-byte values) per case,"
            f" one in flight; {WATCHERS} Watch streams over {CONNECTIONS} connections that"
            " never read; durability fsync"
        ],
    )
