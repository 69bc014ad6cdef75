"""Replication figures on a real 3-node cluster on 127.0.0.1.

Usage: python bench/replication.py [--rate 200] [--seconds 10] [--missed 10000]

1. Convergence: writes at a steady rate on node 1 (asyncio client); followers
   are polled with BulkGet every 2 ms for the keys they do not hold yet; prints
   the time from acknowledgement until every node holds each write (p50, p99).
   (Polling adds up to ~2 ms and its own load; Watch will measure it better.)
2. In-sync anti-entropy round: the bytes of an Exchange request and answer
   between two nodes that hold the same data, per origin.
3. Catch-up: node 3 is cut off (Faults), misses N writes (BulkPut on node 1),
   is healed; prints the time until its audit digest equals node 1's, and the
   bytes it received (push + exchange answers) against the serialized size of
   the records it missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rumor.v1 import faults_pb2, kv_pb2, kv_pb2_grpc, replication_pb2
from tests.support.cluster import Cluster, faults, node_id, status
from tests.support.nodes import poll

NODE_FLAGS = ("--anti-entropy-interval-ms", "1000", "--gossip-interval-ms", "10")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def convergence(cluster: Cluster, rate: float, seconds: float) -> dict[str, float]:
    writer_address = cluster.nodes[0].address
    followers = [node.address for node in cluster.nodes[1:]]
    channels = {a: grpc.aio.insecure_channel(a) for a in [writer_address, *followers]}
    stubs = {a: kv_pb2_grpc.KVStub(c) for a, c in channels.items()}
    ns = (
        await stubs[writer_address].CreateNamespace(
            kv_pb2.CreateNamespaceRequest(title=f"bench-{time.time()}")
        )
    ).id
    await asyncio.sleep(1.0)  # the namespace itself replicates first
    acked: dict[bytes, float] = {}
    seen: dict[str, dict[bytes, float]] = {a: {} for a in followers}
    done = asyncio.Event()

    async def writer() -> None:
        interval = 1 / rate
        start = time.perf_counter()
        count = int(rate * seconds)
        for i in range(count):
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            key = b"w%08d" % i
            await stubs[writer_address].Put(
                kv_pb2.PutRequest(namespace_id=ns, key=key, value=b"x" * 100)
            )
            acked[key] = time.perf_counter()
        done.set()

    async def poller(address: str) -> None:
        while True:
            missing = [k for k in acked if k not in seen[address]][:100]
            if not missing:
                if done.is_set():
                    return
                await asyncio.sleep(0.002)
                continue
            response = await stubs[address].BulkGet(
                kv_pb2.BulkGetRequest(namespace_id=ns, keys=missing, type=kv_pb2.VALUE_TYPE_TEXT)
            )
            now = time.perf_counter()
            for entry in response.entries:
                if entry.result.found:
                    seen[address][entry.key] = now
            await asyncio.sleep(0.002)

    await asyncio.gather(writer(), *(poller(a) for a in followers))
    latencies = [(max(seen[a][key] for a in followers) - acked[key]) * 1000 for key in acked]
    for channel in channels.values():
        await channel.close()
    return {
        "writes": len(latencies),
        "rate_per_s": rate,
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
    }


def in_sync_round(cluster: Cluster) -> dict[str, float]:
    cluster.wait_converged()
    node = cluster.nodes[1]
    marks = dict(status(node).watermarks)
    request = replication_pb2.ExchangeRequest(digest=marks)
    with grpc.insecure_channel(cluster.nodes[0].address) as channel:
        exchange = channel.unary_unary(
            "/rumor.v1.Replication/Exchange",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=replication_pb2.ExchangeResponse.FromString,
        )
        response = exchange(request, timeout=10)
    origins = max(1, len(marks))
    members_bytes = sum(m.ByteSize() + 2 for m in response.envelope.members)
    total = request.ByteSize() + response.ByteSize()
    return {
        "origins": origins,
        "records_in_answer": len(response.records),
        "request_bytes": request.ByteSize(),
        "answer_bytes": response.ByteSize(),
        "bytes_per_origin": round(total / origins, 1),
        "bytes_per_origin_without_member_gossip": round((total - members_bytes) / origins, 1),
    }


def catch_up(cluster: Cluster, missed: int) -> dict[str, float]:
    first, third = cluster.nodes[0], cluster.nodes[2]
    kv = kv_pb2_grpc.KVStub(first.channel)
    ns = kv.CreateNamespace(kv_pb2.CreateNamespaceRequest(title=f"catchup-{time.time()}")).id
    cluster.wait_converged()
    faults(third).Block(faults_pb2.BlockRequest())
    record_bytes = 0
    for start in range(0, missed, 10_000):
        items = [
            kv_pb2.PutRequest(key=b"m%08d" % i, value=b"v" * 100)
            for i in range(start, min(missed, start + 10_000))
        ]
        kv.BulkPut(kv_pb2.BulkPutRequest(namespace_id=ns, items=items), timeout=120)
        # A record travels as namespace (16) + key + header (37) + value.
        record_bytes += sum(16 + len(i.key) + 37 + len(i.value) for i in items)
    poll(lambda: status(cluster.nodes[1]).records_held >= status(first).records_held, timeout=60)
    before = status(third)
    received_before = before.push_bytes_received + before.exchange_bytes_received
    started = time.perf_counter()
    faults(third).Clear(faults_pb2.Empty())
    target = status(first).audit_digest
    poll(lambda: status(third).audit_digest == target, timeout=120, interval=0.01)
    elapsed = time.perf_counter() - started
    after = status(third)
    received = after.push_bytes_received + after.exchange_bytes_received - received_before
    return {
        "missed_writes": missed,
        "catch_up_s": round(elapsed, 3),
        "bytes_received": received,
        "missed_record_bytes": record_bytes,
        "bytes_ratio": round(received / record_bytes, 3),
        "node": f"{node_id(third):016x}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--missed", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), 3, *NODE_FLAGS)
        try:
            results = {
                "convergence": asyncio.run(convergence(cluster, args.rate, args.seconds)),
                "in_sync_round": in_sync_round(cluster),
                "catch_up": catch_up(cluster, args.missed),
            }
        finally:
            cluster.stop()
    for name, figures in results.items():
        print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
