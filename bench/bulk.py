"""bulk: BulkPut of 10,000-pair batches into one node, against rocksdict WriteBatches in-process.

The node (durability fsync, pinned to core 0) takes BulkPut requests built
before the clock starts, two in flight from an asyncio client on core 1. The
baseline writes the same pairs (same keys, 100-byte values) into a rocksdict
database in this process, one WriteBatch of 10,000 puts per batch, each
written with sync on, as the node's fsync durability does.

The same node then (or first: the order alternates from run to run) takes the
same number of batches through the Python SDK (``AsyncClient.bulk_put`` of
``{"key": str, "value": bytes}`` items, built before the clock starts; the
SDK's own conversion to messages is timed, as an application pays it), into a
namespace of its own; the ``sdk_`` figures and the SDK / raw ratio compare them.
Between the two the node is left to finish flushing what the first wrote.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc
from rocksdict import Options, Rdict, WriteBatch, WriteOptions

from rumor.bench.common import (
    BULK_PAIRS,
    CLIENT_CORE,
    Result,
    Target,
    cpu_seconds,
    medians,
    node_flags,
    pid_of,
    pin_self,
    quiet,
    scratch_dir,
    start_node,
)
from rumor.client import AsyncClient
from rumor.v1 import kv_pb2, kv_pb2_grpc

T = TypeVar("T")
VALUE_BYTES = 100
IN_FLIGHT = 2


def pairs(batch: int, value: bytes) -> list[tuple[bytes, bytes]]:
    start = batch * BULK_PAIRS
    return [(b"bulk-%010d" % i, value) for i in range(start, start + BULK_PAIRS)]


async def timed(
    send: Callable[[T], Awaitable[int]], batches: list[T], pid: int, prefix: str = ""
) -> dict[str, float]:
    """Send ``batches`` with ``IN_FLIGHT`` senders; keys/s, batch latency, server CPU/key."""
    pending = list(reversed(batches))

    async def sender() -> None:
        while pending:
            assert await send(pending.pop()) == BULK_PAIRS

    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(IN_FLIGHT)))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    keys = len(batches) * BULK_PAIRS
    return {
        f"{prefix}keys_per_s": round(keys / elapsed),
        f"{prefix}batch_ms": round(elapsed / len(batches) * 1000 * IN_FLIGHT, 1),
        f"{prefix}server_cpu_us_per_key": round(cpu / keys * 1e6, 2),
    }


async def node_keys_per_s(address: str, pid: int, batches: int, value: bytes) -> dict[str, float]:
    """BulkPut through the raw gRPC stub, requests built before the clock starts."""
    channel = grpc.aio.insecure_channel(address, options=[("grpc.max_send_message_length", -1)])
    stub = kv_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
    namespace = (await stub.CreateNamespace(kv_pb2.CreateNamespaceRequest(title="bulk"))).id
    requests = [
        kv_pb2.BulkPutRequest(
            namespace_id=namespace,
            items=[kv_pb2.PutRequest(key=k, value=v) for k, v in pairs(batch, value)],
        )
        for batch in range(batches)
    ]

    async def send(request: kv_pb2.BulkPutRequest) -> int:
        response = await stub.BulkPut(request, timeout=120)
        return int(response.successful_key_count)

    figures = await timed(send, requests, pid)
    await channel.close(None)
    return figures


async def sdk_keys_per_s(address: str, pid: int, batches: int, value: bytes) -> dict[str, float]:
    """BulkPut through ``AsyncClient.bulk_put``: its items built before the clock starts,
    their conversion to a request timed."""
    async with AsyncClient(address, timeout=120) as client:
        namespace = client.namespace((await client.namespaces.create("bulk-sdk")).id)
        items = [
            [{"key": key.decode(), "value": each} for key, each in pairs(batch, value)]
            for batch in range(batches)
        ]
        return await timed(namespace.bulk_put, items, pid, "sdk_")


def rocksdict_keys_per_s(path: Path, batches: int, value: bytes) -> dict[str, float]:
    database = Rdict(str(path), Options(raw_mode=True))
    synced = WriteOptions()
    synced.sync = True
    try:
        prepared = [pairs(batch, value) for batch in range(batches)]
        started = time.perf_counter()
        for batch in prepared:
            writes = WriteBatch(raw_mode=True)
            for key, each in batch:
                writes.put(key, each)
            database.write(writes, synced)
        elapsed = time.perf_counter() - started
    finally:
        database.close()
    return {"keys_per_s": round(batches * BULK_PAIRS / elapsed)}


def one_run(root: Path, index: int, batches: int) -> dict[str, float]:
    value = os.urandom(VALUE_BYTES)
    baseline = rocksdict_keys_per_s(root / f"rocksdict-{index}", batches, value)
    node = start_node(root / f"node-{index}", *node_flags("fsync"))
    address, pid = node.address, pid_of(node)

    async def both() -> dict[str, float]:
        # The SDK first in every other run, so that neither always meets the fuller node.
        first, second = (
            (sdk_keys_per_s, node_keys_per_s) if index % 2 else (node_keys_per_s, sdk_keys_per_s)
        )
        figures = await first(address, pid, batches, value)
        await quiet(pid)
        return figures | await second(address, pid, batches, value)

    try:
        measured = asyncio.run(both())
    finally:
        node.stop()
    return {**measured, "rocksdict_keys_per_s": baseline["keys_per_s"]}


def run(*, quick: bool, runs: int) -> Result:
    batches = 2 if quick else 20
    runs = 1 if quick else runs
    pin_self(CLIENT_CORE)
    with scratch_dir("bulk") as root:
        samples = [one_run(root, index, batches) for index in range(runs)]
    figures = medians(samples)
    baseline = {"rocksdict_keys_per_s": figures.pop("rocksdict_keys_per_s")}
    return Result(
        name="bulk",
        quick=quick,
        runs=runs,
        figures=figures,
        baseline=baseline,
        ratios={
            "node / rocksdict": round(figures["keys_per_s"] / baseline["rocksdict_keys_per_s"], 3),
            "sdk / raw stub": round(figures["sdk_keys_per_s"] / figures["keys_per_s"], 3),
        },
        targets=[Target("BulkPut keys/s", figures["keys_per_s"], ">=", 100_000, "keys/s")],
        notes=[
            f"{batches} batches of {BULK_PAIRS:,} pairs, {VALUE_BYTES}-byte values,"
            f" {IN_FLIGHT} requests in flight; durability fsync"
        ],
    )
