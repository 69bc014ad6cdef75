"""``rumor bench workers``: what worker processes buy on this machine's cores.

In one run, for ``--workers 0`` (one process: the baseline), 1 and 2, a fresh node (fsync)
serves, unpinned, h2load's unary gRPC Gets and Puts (HTTP/2, 8 connections of
8 streams: the kernel spreads connections over the workers) and HTTP GETs (64
HTTP/1.1 connections), 100-byte values, rounds interleaved, medians. Beside
each rate: the load generator's CPU (h2load runs on the same cores) and the
node's CPU per request, split into the owner's and the workers'. The owner's
CPU per forwarded Put is what bounds a node's writes however many workers it
runs: its inverse is the write ceiling for 8 or 16 workers.
"""

from __future__ import annotations

import resource
import tempfile
from collections.abc import Callable
from pathlib import Path

from rumor.bench.common import Result, Target, cpu_seconds, median, node_flags, pid_of, start_node
from rumor.bench.load_generators import GRPC_HEADERS, LoadRun, grpc_frame, h2load
from rumor.bench.peers_servers import ensure_programs, grpc_unary, tree_cpu_seconds
from rumor.v1 import kv_pb2

API_TOKEN = "bench-workers-token"
VALUE = b"v" * 100
KEY = b"bench-key"
WORKER_COUNTS = (0, 1, 2)
GRPC_CONNECTIONS = 8
IN_FLIGHT = 64


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
        metadata = (("authorization", f"Bearer {API_TOKEN}"),)
        created = grpc_unary(
            node.address,
            "/rumor.v1.KV/CreateNamespace",
            kv_pb2.CreateNamespaceRequest(title="bench-workers").SerializeToString(),
            metadata,
        )
        namespace = kv_pb2.Namespace.FromString(created).id
        put = kv_pb2.PutRequest(namespace_id=namespace, key=KEY, value=VALUE).SerializeToString()
        get = kv_pb2.GetRequest(namespace_id=namespace, key=KEY).SerializeToString()
        grpc_unary(node.address, "/rumor.v1.KV/Put", put, metadata)
        answer = kv_pb2.GetResponse.FromString(
            grpc_unary(node.address, "/rumor.v1.KV/Get", get, metadata)
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
    figures = {key: median(values) for key, values in samples.items()}
    for op in ("grpc_get", "grpc_put", "http_get"):
        one = figures[f"w1_{op}_ops_per_s"]
        figures[f"w2_vs_w1_{op}"] = round(figures[f"w2_{op}_ops_per_s"] / one, 3)
        figures[f"w2_vs_w0_{op}"] = round(
            figures[f"w2_{op}_ops_per_s"] / figures[f"w0_{op}_ops_per_s"], 3
        )
    owner_put = figures["w2_grpc_put_owner_cpu_us_per_op"]
    figures["owner_write_ceiling_ops_per_s"] = round(1e6 / owner_put) if owner_put else 0.0
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
            "owner_write_ceiling: 1e6 / the owner's CPU per forwarded Put (2 workers);"
            " 8 or 16 workers cannot write faster than that",
        ],
    )
