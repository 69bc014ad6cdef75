"""frames: what one ``KV.Batch`` frame costs the node, by its size and by what it carries.

One node (fsync durability) pinned to core 0; this process on core 1 keeps one
Batch stream with exactly one frame in flight: it writes a frame of N
operations, reads every answer, and writes the next. Frames of 1, 8, 64 and 256
Puts (100-byte values, one key overwritten) and the same of Gets (of that key),
each size timed after a warm-up, the kinds and sizes taking turns within a run.
The node's CPU (user + system of its process tree, /proc) divided by the frames
it answered gives the CPU per frame; a least-squares line through the sizes
splits it into a cost per frame, whatever it carries, and a cost per operation.
The baseline is the Gets': what a frame of reads costs, in the same run. The
target is what Batch is for: a Put among 64 in a frame costs the node at most
a tenth of a Put alone in its frame.

With one frame in flight the node idles while the client works, so these are
the costs of a node that is not saturated (each frame finds its caches cooler);
what they say is the ratio: how much more a frame of writes costs than a frame
of reads, and how much of it does not shrink with the frame.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from grpc.aio import EOF  # type: ignore[attr-defined]  # missing from grpc-stubs

from rumor.bench.common import (
    CLIENT_CORE,
    Result,
    Target,
    medians,
    pin_self,
    quiet,
    scratch_dir,
)
from rumor.bench.peers_servers import RumorServer, rumor_node, tree_cpu_seconds
from rumor.v1 import kv_pb2

SIZES = (1, 8, 64, 256)
KINDS = ("put", "get")
KEY = b"frames"
VALUE = b"v" * 100


class _Stream:
    """One Batch stream, one frame in flight at a time."""

    def __init__(self, node: RumorServer, channel: grpc.aio.Channel) -> None:
        self._node = node
        open_stream: Any = channel.stream_stream(
            "/rumor.v1.KV/Batch",
            request_serializer=kv_pb2.BatchRequest.SerializeToString,
            response_deserializer=kv_pb2.BatchResponse.FromString,
        )
        self._call = open_stream(metadata=node.metadata)
        self._ids = 0

    def frame(self, kind: str, size: int) -> kv_pb2.BatchRequest:
        frame = kv_pb2.BatchRequest()
        for _ in range(size):
            self._ids += 1
            op = frame.ops.add()
            op.id = self._ids
            if kind == "put":
                op.put.namespace_id, op.put.key, op.put.value = self._node.namespace, KEY, VALUE
            else:
                op.get.namespace_id, op.get.key = self._node.namespace, KEY
        return frame

    async def round_trip(self, frame: kv_pb2.BatchRequest) -> None:
        await self._call.write(frame)
        answered = 0
        while answered < len(frame.ops):
            response = await self._call.read()
            if response is EOF:
                raise RuntimeError("the node ended the Batch stream")
            for result in response.results:
                if result.HasField("error"):
                    raise RuntimeError(f"a batched operation failed: {result.error.message}")
            answered += len(response.results)

    async def close(self) -> None:
        await self._call.done_writing()


async def _cost(stream: _Stream, pid: int, kind: str, size: int, seconds: float) -> float:
    """The node's CPU per frame (µs) of ``kind`` frames of ``size`` operations."""
    frame = stream.frame(kind, size)
    warm_until = time.perf_counter() + seconds / 5
    while time.perf_counter() < warm_until:
        await stream.round_trip(frame)
    cpu_before, frames = tree_cpu_seconds(pid), 0
    stop_at = time.perf_counter() + seconds
    while time.perf_counter() < stop_at:
        await stream.round_trip(frame)
        frames += 1
    return (tree_cpu_seconds(pid) - cpu_before) / frames * 1e6


def _line(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares ``cost = fixed + per_op * size`` through (size, cost) points."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum(
        (x - mean_x) ** 2 for x, _ in points
    )
    return mean_y - slope * mean_x, slope


async def _one_run(node: RumorServer, seconds: float, index: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    async with grpc.aio.insecure_channel(node.address) as channel:
        stream = _Stream(node, channel)
        await stream.round_trip(stream.frame("put", 1))  # the key is held before any Get
        kinds = KINDS if index % 2 == 0 else KINDS[::-1]
        for kind in kinds:
            await quiet(node.pid)
            points = []
            for size in SIZES:
                per_frame = await _cost(stream, node.pid, kind, size, seconds)
                figures[f"{kind}_{size}_node_cpu_us_per_frame"] = round(per_frame, 1)
                points.append((size, per_frame))
            fixed, per_op = _line(points)
            figures[f"{kind}_node_cpu_us_per_frame_fixed"] = round(fixed, 1)
            figures[f"{kind}_node_cpu_us_per_op"] = round(per_op, 2)
        await stream.close()
    return figures


def run(*, quick: bool, runs: int) -> Result:
    runs = 1 if quick else runs
    seconds = 0.3 if quick else 3.0
    samples = []
    with scratch_dir("frames") as root:
        pin_self(CLIENT_CORE)
        try:
            for index in range(runs):
                with rumor_node(Path(root) / f"run-{index}") as node:
                    samples.append(asyncio.run(_one_run(node, seconds, index)))
        finally:
            pin_self(None)
    figures = medians(samples)
    puts = {k: v for k, v in figures.items() if k.startswith("put_")}
    gets = {k: v for k, v in figures.items() if k.startswith("get_")}
    # What Batch is for: a Put among 64 costs the node a small share of a Put alone.
    amortized = round(
        puts["put_64_node_cpu_us_per_frame"] / 64 / max(0.1, puts["put_1_node_cpu_us_per_frame"]),
        3,
    )
    return Result(
        name="frames",
        quick=quick,
        runs=runs,
        figures=puts,
        baseline=gets,
        ratios={
            "put frame fixed / get frame fixed": round(
                puts["put_node_cpu_us_per_frame_fixed"]
                / max(0.1, gets["get_node_cpu_us_per_frame_fixed"]),
                2,
            ),
            "put per op / get per op": round(
                puts["put_node_cpu_us_per_op"] / max(0.01, gets["get_node_cpu_us_per_op"]), 2
            ),
            "a put in a frame of 64 / a frame of one put": amortized,
        },
        targets=[Target("a Put in a frame of 64 / a frame of one Put", amortized, "<=", 0.1)],
        notes=[
            f"one frame in flight; frames of {', '.join(map(str, SIZES))} operations;"
            f" {seconds} s per size after {seconds / 5} s of warm-up; median of {runs} run(s)",
            "node (fsync) on core 0, client on core 1",
        ],
    )
