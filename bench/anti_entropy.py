"""anti-entropy: a node that missed writes catches up; an in-sync round costs almost nothing.

Three nodes on 127.0.0.1 (default timers: anti-entropy every 1 s) hold
1,000,000 keys (loaded by BulkPut through node 1 and replicated). Each run:

- In-sync round: the bytes of one Exchange (request + answer) between two
  nodes holding the same data, per origin.
- Catch-up: node 3 is cut off with Faults.Block, node 1 takes 10,000 new
  writes (BulkPut) which it and node 2 gossip between them, node 3 is healed
  once that gossip is over; the time until node 3's audit digest
  equals node 1's, and the bytes node 3 received (Push and Exchange answers)
  against the serialized size of the records it missed. The baseline is the
  time node 1 took to take those writes from the client.
"""

from __future__ import annotations

import os
import time

from rumor.bench.common import (
    Result,
    Target,
    bulk_put,
    medians,
    node_flags,
    pin_self,
    scratch_dir,
    start_cluster,
    status,
)
from rumor.experiments.lab.processes import NodeProcess, poll
from rumor.node.core.hlc import pack
from rumor.node.core.record import RecordHeader
from rumor.v1 import faults_pb2, faults_pb2_grpc, kv_pb2, replication_pb2

VALUE_BYTES = 100


def converged(nodes: list[NodeProcess]) -> bool:
    digests = {status(node).audit_digest for node in nodes}
    return len(digests) == 1


def settle(nodes: list[NodeProcess]) -> None:
    """Wait until ``nodes`` stop pushing: the gossip of the missed writes (forwarded to
    node 3 and refused) is over, so what node 3 receives after the heal is its repair."""
    last: list[int] = []

    def quiet() -> bool:
        nonlocal last
        now = [status(node).pushes_sent for node in nodes]
        same = now == last
        last = now
        return same

    poll(quiet, timeout=60, interval=0.1)


def serialized_bytes(namespace: bytes, keys: list[bytes], value: bytes) -> int:
    """What the missed records weigh as replication Records on the wire."""
    now_ms = int(time.time() * 1000)
    header = RecordHeader(hlc=pack(now_ms, 0), origin=1 << 63, seq=1 << 40, value_length=len(value))
    sample = replication_pb2.Record(
        namespace=namespace, key=keys[0], header=header.encode(), value=value
    )
    per_record = sample.ByteSize() + 3  # + the field tag and length of `records`
    return per_record * len(keys)


def in_sync_round(asker: NodeProcess, answerer: NodeProcess) -> dict[str, float]:
    marks = dict(status(asker).watermarks)
    request = replication_pb2.ExchangeRequest(digest=marks)
    exchange = answerer.channel.unary_unary(
        "/rumor.v1.Replication/Exchange",
        request_serializer=replication_pb2.ExchangeRequest.SerializeToString,
        response_deserializer=replication_pb2.ExchangeResponse.FromString,
    )
    answer: replication_pb2.ExchangeResponse = exchange(request, timeout=30)
    origins = max(1, len(marks))
    total = request.ByteSize() + answer.ByteSize()
    gossip = sum(member.ByteSize() + 2 for member in answer.envelope.members)
    return {
        "in_sync_records_sent": len(answer.records),
        "in_sync_bytes_per_origin": round(total / origins, 1),
        "in_sync_bytes_per_origin_without_member_gossip": round((total - gossip) / origins, 1),
    }


def catch_up(nodes: list[NodeProcess], namespace: str, run: int, missed: int) -> dict[str, float]:
    first, second, third = nodes
    cut_off = faults_pb2_grpc.FaultsStub(third.channel)  # type: ignore[no-untyped-call]
    cut_off.Block(faults_pb2.BlockRequest(direction=faults_pb2.DIRECTION_BOTH))
    keys = [b"missed-%02d-%08d" % (run, i) for i in range(missed)]
    value = os.urandom(VALUE_BYTES)
    started = time.perf_counter()
    bulk_put(first, namespace, keys, value)
    write_s = time.perf_counter() - started
    poll(lambda: converged([first, second]), timeout=120, interval=0.01)
    settle([first, second])
    before = status(third)
    received_before = before.push_bytes_received + before.exchange_bytes_received
    target = status(first).audit_digest
    started = time.perf_counter()
    cut_off.Clear(faults_pb2.Empty())
    poll(lambda: status(third).audit_digest == target, timeout=120, interval=0.005)
    catch_up_s = time.perf_counter() - started
    after = status(third)
    received = after.push_bytes_received + after.exchange_bytes_received - received_before
    wire = serialized_bytes(bytes.fromhex(namespace), keys, value)
    return {
        "catch_up_s": round(catch_up_s, 3),
        "bytes_received": received,
        "missed_record_bytes": wire,
        "bytes_ratio": round(received / wire, 3),
        "write_s": round(write_s, 3),
    }


def run(*, quick: bool, runs: int) -> Result:
    runs = 1 if quick else runs
    keys = 20_000 if quick else 1_000_000
    missed = 1_000 if quick else 10_000
    pin_self(None)  # the cluster and this client share every core
    with scratch_dir("anti-entropy") as root:
        nodes = start_cluster(root, 3, *node_flags(), "--enable-fault-injection", cores=[None])
        try:
            namespace = nodes[0].kv.CreateNamespace(kv_pb2.CreateNamespaceRequest(title="ae")).id
            started = time.perf_counter()
            bulk_put(
                nodes[0],
                namespace,
                [b"held-%08d" % i for i in range(keys)],
                os.urandom(VALUE_BYTES),
            )
            poll(lambda: converged(nodes), timeout=1800, interval=0.2)
            load_s = time.perf_counter() - started
            # In-sync rounds first, while membership is quiet: after a heal, the
            # envelopes carry member updates (SWIM piggybacking) for a while.
            poll(lambda: converged(nodes), timeout=120, interval=0.05)
            rounds = [in_sync_round(nodes[1], nodes[0]) for _ in range(runs)]
            catch_ups = []
            for index in range(runs):
                poll(lambda: converged(nodes), timeout=120, interval=0.05)
                catch_ups.append(catch_up(nodes, namespace, index, missed))
            samples = [r | c for r, c in zip(rounds, catch_ups, strict=True)]
            held = status(nodes[2]).records_held
        finally:
            for node in nodes:
                node.stop()
    figures = medians(samples)
    write_s = figures.pop("write_s")
    return Result(
        name="anti-entropy",
        quick=quick,
        runs=runs,
        figures={
            "keys_held": held,
            "missed_writes": missed,
            "load_and_replicate_s": round(load_s, 1),
            **figures,
        },
        baseline={"node_1_took_the_missed_writes_s": write_s},
        ratios={"catch-up / writing them": round(figures["catch_up_s"] / max(write_s, 1e-6), 3)},
        targets=[
            Target("catch-up of the missed writes", figures["catch_up_s"], "<=", 3.0, "s"),
            Target("bytes received / missed records' bytes", figures["bytes_ratio"], "<=", 1.3),
            Target(
                "in-sync round, bytes per origin",
                figures["in_sync_bytes_per_origin"],
                "<=",
                64,
                "B",
            ),
        ],
        notes=[
            f"3 nodes unpinned on {os.cpu_count()} cores, {keys:,} keys of {VALUE_BYTES} bytes,"
            f" anti-entropy every 1 s (the default); node 3 misses {missed:,} writes per run",
        ],
    )
