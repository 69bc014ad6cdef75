"""``rumor bench workers``: what worker processes buy on this machine's cores.

In one run, for ``--workers 0`` (one process: the baseline), 1 and 2, a fresh node (fsync)
serves, unpinned, h2load's unary gRPC Gets and Puts (HTTP/2, 8 connections of
8 streams: the kernel spreads connections over the workers) and HTTP GETs (64
HTTP/1.1 connections), 100-byte values, rounds interleaved, medians. Beside
each rate: the load generator's CPU (h2load runs on the same cores) and the
node's CPU per request, split into the owner's and the workers'.

Every write is the owner's, so the owner's CPU per forwarded Put bounds a
node's writes however many workers it runs, and that cost depends on how the
writes arrive: a worker sends its writes in frames on one Batch stream, so
more workers sharing the same load mean more, smaller frames. Two cores cannot
run 8 or 16 workers, so the owner is measured as they would feed it: a node
(``--workers 0``, the owner's code) pinned to one core, and this process on the
other keeping 8 or 16 Batch streams, each gathering its writes as a worker's
link to its owner does (``owner_link``), 64 Puts in flight among them. The
inverse of the owner's CPU per Put is the write ceiling for that many workers.
"""

from __future__ import annotations

import asyncio
import os
import resource
import tempfile
from collections.abc import Callable
from pathlib import Path

import grpc.aio

from rumor.bench.common import (
    CLIENT_CORE,
    Result,
    Target,
    cpu_seconds,
    median,
    node_flags,
    pid_of,
    pin_self,
    start_node,
)
from rumor.bench.load_generators import GRPC_HEADERS, LoadRun, grpc_frame, h2load
from rumor.bench.measured_load import Load, sdk_body
from rumor.bench.peers_servers import (
    create_namespace,
    ensure_programs,
    grpc_unary,
    tree_cpu_seconds,
)
from rumor.client.batch_aio import AsyncBatcher
from rumor.node.server.workers.owner_link import GATHER_S
from rumor.v1 import kv_pb2

API_TOKEN = "bench-workers-token"
AUTHORIZATION = (("authorization", f"Bearer {API_TOKEN}"),)
VALUE = b"v" * 100
KEY = b"bench-key"
WORKER_COUNTS = (0, 1, 2)
GRPC_CONNECTIONS = 8
IN_FLIGHT = 64
# Workers the owner is measured as being fed by (more than this machine can run).
FED_BY = (8, 16)


def h2load_run(
    url: str,
    seconds: float,
    *,
    connections: int,
    streams: int,
    body: bytes | None = None,
    headers: tuple[str, ...] = (),
    http1: bool = False,
) -> tuple[LoadRun, float]:
    """``load_generators.h2load``, unpinned; its report and the CPU seconds it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = h2load(
        url,
        seconds=max(1.0, float(round(seconds))),
        in_flight=connections * streams,
        body=body,
        headers=headers,
        http1=http1,
        connections=connections,
        pinned=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done, used


def _measure(
    owner_pid: int, run: Callable[[], tuple[LoadRun, float]], prefix: str
) -> dict[str, float]:
    tree_before, owner_before = tree_cpu_seconds(owner_pid), cpu_seconds(owner_pid)
    done, load_cpu = run()
    tree = tree_cpu_seconds(owner_pid) - tree_before
    owner = cpu_seconds(owner_pid) - owner_before
    return {
        f"{prefix}_ops_per_s": round(done.requests_per_s, 1),
        f"{prefix}_node_cpu_us_per_op": round(tree / done.requests * 1e6, 1),
        f"{prefix}_owner_cpu_us_per_op": round(owner / done.requests * 1e6, 1),
        f"{prefix}_load_generator_cpu_us_per_op": round(load_cpu / done.requests * 1e6, 1),
    }


async def _fed_puts(
    address: str, pid: int, namespace: str, workers: int, load: Load
) -> dict[str, float]:
    """The owner's rate and CPU per Put, fed by ``workers`` Batch streams as workers feed it."""
    channels = [grpc.aio.insecure_channel(address) for _ in range(workers)]
    links = [AsyncBatcher(channel, AUTHORIZATION, gather_s=GATHER_S) for channel in channels]
    puts = [
        kv_pb2.PutRequest(namespace_id=namespace, key=b"w%d" % caller, value=VALUE)
        for caller in range(load.in_flight)
    ]

    async def put(caller: int) -> object:  # a caller keeps to one link; an error fails the run
        return await links[caller % workers].call("put", puts[caller], 10.0)

    try:
        measured = await sdk_body(put, pid, load)
    finally:
        for each in links:
            await each.close()
        for channel in channels:
            await channel.close(None)
    return {
        f"owner_fed_by_{workers}_put_ops_per_s": round(measured.ops_per_s, 1),
        f"owner_fed_by_{workers}_cpu_us_per_put": round(measured.cpu_us_per_op, 1),
        f"owner_fed_by_{workers}_write_ceiling_ops_per_s": round(1e6 / measured.cpu_us_per_op),
    }


def owner_fed(root: Path, seconds: float) -> dict[str, float]:
    """The owner's CPU per Put when 8 and 16 workers forward the writes (see the module)."""
    node = start_node(
        root / "owner", *node_flags("fsync"), "--api-token", API_TOKEN, "--workers", "0"
    )
    affinity = os.sched_getaffinity(0)
    try:
        namespace = create_namespace(node.address, AUTHORIZATION, "bench-workers")
        pin_self(CLIENT_CORE)
        load = Load(seconds=seconds, warmup=min(1.0, seconds), in_flight=IN_FLIGHT)
        figures: dict[str, float] = {}
        for workers in FED_BY:
            figures |= asyncio.run(_fed_puts(node.address, pid_of(node), namespace, workers, load))
        return figures
    finally:
        os.sched_setaffinity(0, affinity)
        node.stop()


def one_node(root: Path, workers: int, seconds: float) -> dict[str, float]:
    node = start_node(
        root / f"w{workers}",
        *node_flags("fsync"),
        "--http",
        "127.0.0.1:0",
        "--api-token",
        API_TOKEN,
        "--workers",
        str(workers),
        core=None,
    )
    try:
        namespace = create_namespace(node.address, AUTHORIZATION, "bench-workers")
        put = kv_pb2.PutRequest(namespace_id=namespace, key=KEY, value=VALUE).SerializeToString()
        get = kv_pb2.GetRequest(namespace_id=namespace, key=KEY).SerializeToString()
        grpc_unary(node.address, "/rumor.v1.KV/Put", put, AUTHORIZATION)
        answer = kv_pb2.GetResponse.FromString(
            grpc_unary(node.address, "/rumor.v1.KV/Get", get, AUTHORIZATION)
        )
        if answer.value != VALUE:
            raise RuntimeError("the benchmark's Put did not read back")
        headers = (*GRPC_HEADERS, f"authorization: Bearer {API_TOKEN}")
        streams = IN_FLIGHT // GRPC_CONNECTIONS

        def grpc_load(method: str, message: bytes) -> Callable[[], tuple[LoadRun, float]]:
            url = f"http://{node.address}/rumor.v1.KV/{method}"
            return lambda: h2load_run(
                url,
                seconds,
                connections=GRPC_CONNECTIONS,
                streams=streams,
                body=grpc_frame(message),
                headers=headers,
            )

        http_url = (
            f"http://{node.http}/client/v4/accounts/bench/storage/kv/namespaces"
            f"/{namespace}/values/{KEY.decode()}"
        )
        pid = pid_of(node)
        figures = _measure(pid, grpc_load("Get", get), f"w{workers}_grpc_get")
        figures |= _measure(pid, grpc_load("Put", put), f"w{workers}_grpc_put")
        figures |= _measure(
            pid,
            lambda: h2load_run(
                http_url,
                seconds,
                connections=IN_FLIGHT,
                streams=1,
                headers=(f"authorization: Bearer {API_TOKEN}",),
                http1=True,
            ),
            f"w{workers}_http_get",
        )
        return figures
    finally:
        node.stop()


def run(*, quick: bool, runs: int) -> Result:
    ensure_programs()
    rounds = 1 if quick else min(runs, 3)
    seconds = 1.0 if quick else 8.0
    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="rumor-bench-workers-") as scratch:
        for index in range(rounds):
            order = WORKER_COUNTS[index % 3 :] + WORKER_COUNTS[: index % 3]
            for workers in order:
                for key, value in one_node(Path(scratch) / str(index), workers, seconds).items():
                    samples.setdefault(key, []).append(value)
            for key, value in owner_fed(Path(scratch) / str(index), seconds).items():
                samples.setdefault(key, []).append(value)
    figures = {key: median(values) for key, values in samples.items()}
    for op in ("grpc_get", "grpc_put", "http_get"):
        one = figures[f"w1_{op}_ops_per_s"]
        figures[f"w2_vs_w1_{op}"] = round(figures[f"w2_{op}_ops_per_s"] / one, 3)
        figures[f"w2_vs_w0_{op}"] = round(
            figures[f"w2_{op}_ops_per_s"] / figures[f"w0_{op}_ops_per_s"], 3
        )
    baseline = {key: value for key, value in figures.items() if key.startswith("w0_")}
    return Result(
        name="workers",
        quick=quick,
        runs=rounds,
        figures={key: value for key, value in figures.items() if key not in baseline},
        baseline=baseline,
        ratios={
            "w2_vs_w1_grpc_get": figures["w2_vs_w1_grpc_get"],
            "w2_vs_w1_http_get": figures["w2_vs_w1_http_get"],
        },
        targets=[
            Target("2 workers vs 1, unary Get", figures["w2_vs_w1_grpc_get"], ">=", 1.6, "x"),
            Target("2 workers vs 1, HTTP GET", figures["w2_vs_w1_http_get"], ">=", 1.6, "x"),
        ],
        notes=[
            f"{rounds} round(s) of {seconds:.0f} s per body, unpinned, medians",
            "owner_fed_by_N: the owner (a --workers 0 node) pinned to one core, fed by N"
            " Batch streams gathering writes as N workers' links do, 64 Puts in flight"
            " among them; its write ceiling is 1e6 / its CPU per Put",
        ],
    )
