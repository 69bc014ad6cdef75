"""put-get: one node under 64 in-flight asyncio unary Puts and Gets, against a bare echo server.

The node (durability fsync, the default) and the echo server each run pinned to
core 0, the client to core 1. Each run measures the echo server's Put and Get,
then a fresh node's Put (fsync), Put (wal) and Get of keys it holds, for the
same time each; the figures are the medians of the runs. Server CPU per
request comes from /proc (user + system time of the server process).

The fsync node is measured twice in each run: through the raw gRPC stubs and
through the Python SDK (``AsyncClient``, string keys, what an application
calls), alternating which goes first from run to run; the ``sdk_`` figures and
the SDK / raw ratios compare the two on the same node (left to go quiet in
between).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from rumor.bench.common import (
    CLIENT_CORE,
    NODE_CORE,
    Result,
    Target,
    cpu_seconds,
    medians,
    node_flags,
    percentile,
    pid_of,
    pin_self,
    quiet,
    scratch_dir,
    start_node,
    start_process,
    stop_process,
)
from rumor.client import AsyncClient
from rumor.v1 import kv_pb2, kv_pb2_grpc

IN_FLIGHT = 64
VALUE_BYTES = 100
GET_KEYS = 10_000


@dataclass
class Phase:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float

    def figures(self, prefix: str) -> dict[str, float]:
        return {
            f"{prefix}_requests_per_s": round(self.requests_per_s, 1),
            f"{prefix}_p50_ms": round(self.p50_ms, 3),
            f"{prefix}_p99_ms": round(self.p99_ms, 3),
            f"{prefix}_server_cpu_us_per_request": round(self.cpu_us_per_request, 1),
        }


async def load(
    call: Callable[[Any], Awaitable[Any]],
    make_request: Callable[[int], Any],
    server_pid: int,
    seconds: float,
    warmup: float,
) -> Phase:
    """``IN_FLIGHT`` workers calling back to back; measured after ``warmup`` seconds."""
    latencies: list[float] = []
    counter = 0
    measuring = False
    stop_at = time.perf_counter() + warmup + seconds

    async def worker() -> None:
        nonlocal counter
        while time.perf_counter() < stop_at:
            counter += 1
            request = make_request(counter)
            started = time.perf_counter()
            await call(request)
            if measuring:
                latencies.append(time.perf_counter() - started)

    async def measure() -> tuple[float, float]:
        nonlocal measuring
        await asyncio.sleep(warmup)
        measuring = True
        return time.perf_counter(), cpu_seconds(server_pid)

    workers = [asyncio.create_task(worker()) for _ in range(IN_FLIGHT)]
    started, cpu_before = await measure()
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(server_pid) - cpu_before
    count = max(1, len(latencies))
    return Phase(
        requests_per_s=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        cpu_us_per_request=cpu / count * 1e6,
    )


async def drive(
    address: str, server_pid: int, seconds: float, warmup: float, *, puts_only: bool, is_node: bool
) -> dict[str, Phase]:
    channel = grpc.aio.insecure_channel(address)
    stub = kv_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
    namespace = (await stub.CreateNamespace(kv_pb2.CreateNamespaceRequest(title="bench"))).id
    value = os.urandom(VALUE_BYTES)

    def put_request(i: int) -> kv_pb2.PutRequest:
        return kv_pb2.PutRequest(namespace_id=namespace, key=b"key-%08d" % i, value=value)

    def get_request(i: int) -> kv_pb2.GetRequest:
        return kv_pb2.GetRequest(namespace_id=namespace, key=b"held-%08d" % (i % GET_KEYS))

    phases = {"put": await load(stub.Put, put_request, server_pid, seconds, warmup)}
    if not puts_only:
        if is_node:
            items = [kv_pb2.PutRequest(key=b"held-%08d" % i, value=value) for i in range(GET_KEYS)]
            await stub.BulkPut(kv_pb2.BulkPutRequest(namespace_id=namespace, items=items))
        phases["get"] = await load(stub.Get, get_request, server_pid, seconds, warmup)
    await channel.close(None)
    return phases


async def drive_sdk(
    address: str, server_pid: int, seconds: float, warmup: float
) -> dict[str, Phase]:
    """The same Puts and Gets through the asyncio SDK, in a namespace of their own."""
    async with AsyncClient(address) as client:
        namespace = client.namespace((await client.namespaces.create("bench-sdk")).id)
        value = os.urandom(VALUE_BYTES)

        async def put(key: str) -> None:
            await namespace.put(key, value)

        async def get(key: str) -> None:
            await namespace.get(key, "bytes")

        phases = {"sdk_put": await load(put, "key-{:08d}".format, server_pid, seconds, warmup)}
        await namespace.bulk_put(
            [{"key": f"held-{i:08d}", "value": value} for i in range(GET_KEYS)]
        )

        def held_key(i: int) -> str:
            return f"held-{i % GET_KEYS:08d}"

        phases["sdk_get"] = await load(get, held_key, server_pid, seconds, warmup)
    return phases


def node_phases(
    data_dir: Path,
    durability: str,
    seconds: float,
    warmup: float,
    *,
    puts_only: bool,
    sdk_first: bool | None = None,  # None: raw stubs only
) -> dict[str, Phase]:
    node = start_node(data_dir, *node_flags(durability))
    address, pid = node.address, pid_of(node)

    async def both() -> dict[str, Phase]:
        raw = drive(address, pid, seconds, warmup, puts_only=puts_only, is_node=True)
        if sdk_first is None:
            return await raw
        sdk = drive_sdk(address, pid, seconds, warmup)
        first, second = (sdk, raw) if sdk_first else (raw, sdk)
        phases = await first
        await quiet(pid)
        return phases | await second

    try:
        return asyncio.run(both())
    finally:
        node.stop()


def one_run(root: Path, index: int, seconds: float, warmup: float) -> dict[str, float]:
    echo, ready = start_process(["-m", "rumor.bench.echo_server"], NODE_CORE)
    try:
        echo_phases = asyncio.run(
            drive(ready["listen"], echo.pid, seconds, warmup, puts_only=False, is_node=False)
        )
    finally:
        stop_process(echo)
    fsync = node_phases(
        root / f"fsync-{index}", "fsync", seconds, warmup, puts_only=False, sdk_first=index % 2 == 1
    )
    wal = node_phases(root / f"wal-{index}", "wal", seconds, warmup, puts_only=True)
    return (
        echo_phases["put"].figures("echo_put")
        | echo_phases["get"].figures("echo_get")
        | fsync["put"].figures("put_fsync")
        | fsync["get"].figures("get")
        | fsync["sdk_put"].figures("sdk_put_fsync")
        | fsync["sdk_get"].figures("sdk_get")
        | wal["put"].figures("put_wal")
    )


def run(*, quick: bool, runs: int) -> Result:
    seconds, warmup = (0.5, 0.2) if quick else (5.0, 1.0)
    runs = 1 if quick else runs
    pin_self(CLIENT_CORE)
    with scratch_dir("put-get") as root:
        samples = [one_run(root, index, seconds, warmup) for index in range(runs)]
    figures = medians(samples)
    rumor = {k: v for k, v in figures.items() if not k.startswith("echo_")}
    echo = {k: v for k, v in figures.items() if k.startswith("echo_")}
    put_ratio = rumor["put_fsync_requests_per_s"] / echo["echo_put_requests_per_s"]
    get_ratio = rumor["get_requests_per_s"] / echo["echo_get_requests_per_s"]
    wal_ratio = rumor["put_wal_requests_per_s"] / echo["echo_put_requests_per_s"]
    sdk_put = rumor["sdk_put_fsync_requests_per_s"] / rumor["put_fsync_requests_per_s"]
    sdk_get = rumor["sdk_get_requests_per_s"] / rumor["get_requests_per_s"]
    return Result(
        name="put-get",
        quick=quick,
        runs=runs,
        figures=rumor,
        baseline=echo,
        ratios={
            "put_fsync / echo": round(put_ratio, 3),
            "put_wal / echo": round(wal_ratio, 3),
            "get / echo": round(get_ratio, 3),
            "sdk_put_fsync / put_fsync (SDK / raw)": round(sdk_put, 3),
            "sdk_get / get (SDK / raw)": round(sdk_get, 3),
        },
        targets=[
            Target("Put (fsync) throughput / echo", round(put_ratio, 3), ">=", 0.85),
            Target("Get throughput / echo", round(get_ratio, 3), ">=", 0.90),
        ],
        notes=[
            f"{IN_FLIGHT} unary calls in flight from one asyncio client on core {CLIENT_CORE};"
            f" server on core {NODE_CORE}; {VALUE_BYTES}-byte values;"
            f" {seconds} s per phase after {warmup} s of warm-up",
        ],
    )
