"""Single-node Put and Get throughput: 64 calls in flight from one asyncio client.

Usage: python bench/put_get.py [--seconds 5] [--in-flight 64] [--value-bytes 100]
                               [--durability fsync] [--node-arg=--flag=value ...]

Starts a real node on 127.0.0.1 in a temporary directory (pinned to core 0
when taskset exists, the client on core 1), runs Puts then Gets of distinct
keys for the given time each, and prints requests/s and latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from rumor.v1 import kv_pb2 as pb
from rumor.v1 import kv_pb2_grpc


def start_node(
    data_dir: Path, durability: str, extra: list[str]
) -> tuple[subprocess.Popen[bytes], str]:
    command = [
        sys.executable,
        "-m",
        "rumor.node",
        "--data-dir",
        str(data_dir),
        "--listen",
        "127.0.0.1:0",
        "--durability",
        durability,
        "--log-level",
        "warning",
        *extra,
    ]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    line = process.stdout.readline()
    return process, json.loads(line)["listen"]


async def run_phase(
    stub: kv_pb2_grpc.KVStub, make_request, call, seconds: float, in_flight: int
) -> tuple[int, list[float]]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    counter = 0

    async def worker() -> None:
        nonlocal counter
        while time.perf_counter() < deadline:
            counter += 1
            request = make_request(counter)
            started = time.perf_counter()
            await call(request)
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return len(latencies), latencies


def summary(name: str, count: int, latencies: list[float], seconds: float) -> dict[str, float]:
    latencies.sort()
    result = {
        "requests_per_s": round(count / seconds),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3),
    }
    print(
        f"{name:4} {result['requests_per_s']:>8} req/s  p50 {result['p50_ms']:.2f} ms"
        f"  p99 {result['p99_ms']:.2f} ms"
    )
    return result


async def main_async(args: argparse.Namespace, address: str) -> dict[str, dict[str, float]]:
    if shutil.which("taskset"):
        os.sched_setaffinity(0, {1})
    channel = grpc.aio.insecure_channel(address)
    stub = kv_pb2_grpc.KVStub(channel)
    ns = (await stub.CreateNamespace(pb.CreateNamespaceRequest(title="bench"))).id
    value = os.urandom(args.value_bytes)
    keys = 50_000

    def put_request(i: int) -> pb.PutRequest:
        return pb.PutRequest(namespace_id=ns, key=b"key-%08d" % (i % keys), value=value)

    def get_request(i: int) -> pb.GetRequest:
        return pb.GetRequest(namespace_id=ns, key=b"key-%08d" % (i % keys))

    results = {}
    count, latencies = await run_phase(stub, put_request, stub.Put, args.seconds, args.in_flight)
    results["put"] = summary("put", count, latencies, args.seconds)
    count, latencies = await run_phase(stub, get_request, stub.Get, args.seconds, args.in_flight)
    results["get"] = summary("get", count, latencies, args.seconds)
    await channel.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--durability", default="fsync", choices=["fsync", "wal"])
    parser.add_argument("--node-arg", action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        process, address = start_node(Path(tmp) / "data", args.durability, args.node_arg)
        try:
            results = asyncio.run(main_async(args, address))
        finally:
            process.terminate()
            process.wait(30)
    print(json.dumps({"durability": args.durability, **results}))


if __name__ == "__main__":
    main()
