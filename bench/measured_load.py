"""One body of requests, measured: its rate, and the server CPU charged to each request.

A body is requests of one kind that a server answers back to back for a set
time, ``in_flight`` at once, after an untimed warm-up run of the same kind. Its
rate is what the load generator reports over the timed run; its server CPU is
the user + system time of the server's process tree (``tree_cpu_seconds``) over
that run, divided by the requests completed in it. The load comes from h2load
(gRPC as HTTP/2 POSTs, or HTTP/1.1), from redis-benchmark, or from the Python
SDK in this process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rumor.bench.load_generators import GRPC_HEADERS, LoadRun, grpc_frame, h2load, redis_benchmark
from rumor.bench.peers_servers import grpc_unary, tree_cpu_seconds


@dataclass(frozen=True)
class Load:
    """The shape of every body in a run."""

    seconds: float  # each timed body
    warmup: float  # each body's untimed run before it
    in_flight: int  # requests outstanding at once


@dataclass(frozen=True)
class Measurement:
    """A body's rate and the server CPU it cost per request."""

    ops_per_s: float
    cpu_us_per_op: float

    def figures(self, key: str) -> dict[str, float]:
        return {
            f"{key}_ops_per_s": round(self.ops_per_s, 1),
            f"{key}_server_cpu_us_per_op": round(self.cpu_us_per_op, 1),
        }


def charged(pid: int, run: Callable[[], LoadRun]) -> Measurement:
    """``run`` timed by its load generator, with the server's CPU over it per request."""
    before = tree_cpu_seconds(pid)
    done = run()
    cpu = tree_cpu_seconds(pid) - before
    return Measurement(done.requests_per_s, cpu / done.requests * 1e6)


def h2load_body(
    pid: int,
    url: str,
    load: Load,
    *,
    body: bytes | None = None,
    headers: tuple[str, ...] = (),
    http1: bool = False,
) -> Measurement:
    """h2load's requests to ``url`` (see ``load_generators.h2load``)."""

    def run(seconds: float) -> LoadRun:
        return h2load(
            url, seconds=seconds, in_flight=load.in_flight, body=body, headers=headers, http1=http1
        )

    run(load.warmup)
    return charged(pid, lambda: run(load.seconds))


def grpc_body(
    pid: int,
    address: str,
    method: str,
    message: bytes,
    load: Load,
    metadata: tuple[tuple[str, str], ...] = (),
) -> Measurement:
    """Unary calls of ``method`` with ``message``, once one such call has answered with
    grpc-status 0 (h2load sees only HTTP statuses)."""
    grpc_unary(address, method, message, metadata)
    headers = (*GRPC_HEADERS, *(f"{name}: {value}" for name, value in metadata))
    url = f"http://{address}{method}"
    return h2load_body(pid, url, load, body=grpc_frame(message), headers=headers)


async def sdk_body(call: Callable[[int], Awaitable[object]], pid: int, load: Load) -> Measurement:
    """``in_flight`` concurrent callers, each calling ``call(its index)`` back to back."""

    async def calls_for(seconds: float) -> int:
        stop_at = time.perf_counter() + seconds
        completed = 0

        async def caller(index: int) -> None:
            nonlocal completed
            while time.perf_counter() < stop_at:
                await call(index)
                completed += 1

        await asyncio.gather(*(caller(index) for index in range(load.in_flight)))
        return completed

    await calls_for(load.warmup)
    cpu_before, started = tree_cpu_seconds(pid), time.perf_counter()
    completed = await calls_for(load.seconds)
    elapsed, cpu = time.perf_counter() - started, tree_cpu_seconds(pid) - cpu_before
    return Measurement(completed / elapsed, cpu / completed * 1e6)


def redis_body(
    pid: int, port: int, test: str, pipeline: int, value_bytes: int, load: Load
) -> Measurement:
    """redis-benchmark takes a number of requests, not a time: its warm-up runs
    also tell how many fill the timed run."""

    def run(requests: int) -> LoadRun:
        return redis_benchmark(
            port,
            test,
            requests=requests,
            in_flight=load.in_flight,
            pipeline=pipeline,
            value_bytes=value_bytes,
        )

    rate = run(max(1_000, 100 * pipeline)).requests_per_s
    rate = run(max(1_000, int(rate * load.warmup))).requests_per_s
    requests = max(1_000, int(rate * load.seconds))
    return charged(pid, lambda: run(requests))
