"""peers: a Rumor node against its peers on this machine, through one load generator.

Every server runs pinned to core 0 and every client to core 1, with 100-byte
values and 64 requests in flight; each round measures each system once, in
turn (the echo server, Rumor, etcd, Redis: a fresh server per round), and the
figures are the medians of the rounds (three, or ``--runs`` when given; one in
``--quick`` mode). Each row is a body of requests the server answers back to
back for the same time, after a warm-up:

- the grpc.aio echo server (``rumor.bench.echo_server``): unary Get and Put;
- a Rumor node (fsync durability): unary gRPC Get and Put; the same calls
  through the Python SDK (one ``AsyncClient`` in this process, 64 concurrent
  calls); the HTTP API's GET and PUT of a value (64 connections: aiohttp
  speaks HTTP/1.1). The three interfaces take turns going first;
- etcd (GOMAXPROCS=1): Range serializable, Range linearizable and Put;
- Redis (appendfsync always): GET and SET, one request per connection at a time
  and 16 pipelined per connection (4 connections, still 64 in flight).

h2load drives every gRPC and HTTP row, redis-benchmark Redis. Every body reads
or overwrites one key. Before a body is timed one request with it is proven to
succeed (grpc-status 0 or HTTP 200, a write read back), and every load run must
report no failed request. Server CPU per operation is the user + system time of
the server's process tree over the timed run, divided by the requests it
completed. Ratios compare each row with etcd's: Gets with the serializable
Range, Puts with Put.
"""

from __future__ import annotations

import asyncio
import enum
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rumor.bench.common import (
    CLIENT_CORE,
    DEFAULT_RUNS,
    NODE_CORE,
    Result,
    Target,
    medians,
    pin_self,
    quiet,
    scratch_dir,
)
from rumor.bench.echo_server import NAMESPACE_ID
from rumor.bench.measured_load import (
    Load,
    Measurement,
    grpc_body,
    h2load_body,
    redis_body,
    sdk_body,
)
from rumor.bench.peers_servers import (
    RumorServer,
    echo_server,
    ensure_programs,
    etcd_put_request,
    etcd_range_request,
    etcd_server,
    grpc_unary,
    program_versions,
    redis_cli,
    redis_server,
    rumor_node,
)
from rumor.client import AsyncClient
from rumor.v1 import kv_pb2

IN_FLIGHT = 64
VALUE = b"0123456789" * 10  # 100 bytes, printable for redis-cli
KEY = "bench-peers-key"
ROUNDS = 3
REDIS_PIPELINE = 16
REDIS_KEY = "key:__rand_int__"  # the key redis-benchmark reads and writes without -r


class BenchmarkFailed(RuntimeError):
    """A server did not answer a body's request as it should before it was timed."""


class Kind(enum.Enum):
    """Whether a row reads or writes: which etcd row it is compared with."""

    GET = "get"
    PUT = "put"


@dataclass(frozen=True)
class Row:
    """One line of the table: what ``key``'s figures measure."""

    key: str
    system: str
    op: str
    kind: Kind


ROWS = (
    Row("echo_get", "grpc.aio echo", "Get (unary)", Kind.GET),
    Row("echo_put", "grpc.aio echo", "Put (unary)", Kind.PUT),
    Row("rumor_grpc_get", "Rumor gRPC", "Get (unary)", Kind.GET),
    Row("rumor_grpc_put", "Rumor gRPC", "Put (unary, fsync)", Kind.PUT),
    Row("rumor_sdk_get", "Rumor SDK", "Get", Kind.GET),
    Row("rumor_sdk_put", "Rumor SDK", "Put (fsync)", Kind.PUT),
    Row("rumor_http_get", "Rumor HTTP", "GET value", Kind.GET),
    Row("rumor_http_put", "Rumor HTTP", "PUT value (fsync)", Kind.PUT),
    Row("etcd_range_serializable", "etcd", "Range serializable", Kind.GET),
    Row("etcd_range_linearizable", "etcd", "Range linearizable", Kind.GET),
    Row("etcd_put", "etcd", "Put", Kind.PUT),
    Row("redis_get", "Redis", "GET", Kind.GET),
    Row("redis_set", "Redis", "SET (fsync always)", Kind.PUT),
    Row("redis_get_p16", "Redis", f"GET, pipeline {REDIS_PIPELINE}", Kind.GET),
    Row("redis_set_p16", "Redis", f"SET, pipeline {REDIS_PIPELINE}", Kind.PUT),
)
ETCD_REFERENCE = {Kind.GET: "etcd_range_serializable", Kind.PUT: "etcd_put"}
# Rumor's targets here: (name, the ratio or row it reads, at least, unit).
TARGETS = (
    ("SDK Get / etcd Range (serializable)", "rumor_sdk_get / etcd_range_serializable", 4.0, ""),
    ("SDK Put (fsync) / etcd Put", "rumor_sdk_put / etcd_put", 2.0, ""),
    ("unary Get / echo (h2load)", "rumor_grpc_get / echo_get", 0.90, ""),
    ("unary Put (fsync) / echo (h2load)", "rumor_grpc_put / echo_put", 0.85, ""),
    ("HTTP GET throughput", "rumor_http_get", 10_000, "ops/s"),
    ("HTTP PUT (fsync) throughput", "rumor_http_put", 6_000, "ops/s"),
)


# --- the systems: each measures its rows on a fresh server ---


def echo_rows(root: Path, load: Load, index: int) -> dict[str, Measurement]:
    key = KEY.encode()
    get = kv_pb2.GetRequest(namespace_id=NAMESPACE_ID, key=key).SerializeToString()
    put = kv_pb2.PutRequest(namespace_id=NAMESPACE_ID, key=key, value=VALUE).SerializeToString()
    with echo_server() as echo:
        return {
            "echo_get": grpc_body(echo.pid, echo.address, "/rumor.v1.KV/Get", get, load),
            "echo_put": grpc_body(echo.pid, echo.address, "/rumor.v1.KV/Put", put, load),
        }


def rumor_rows(root: Path, load: Load, index: int) -> dict[str, Measurement]:
    """One node serves all three interfaces; which goes first turns with the round."""
    interfaces = [rumor_grpc_rows, rumor_sdk_rows, rumor_http_rows]
    shift = index % len(interfaces)
    measured: dict[str, Measurement] = {}
    with rumor_node(root) as node:
        for interface in interfaces[shift:] + interfaces[:shift]:
            asyncio.run(quiet(node.pid))  # what the previous body wrote is flushed
            measured |= interface(node, load)
    return measured


def rumor_grpc_rows(node: RumorServer, load: Load) -> dict[str, Measurement]:
    key, namespace = KEY.encode(), node.namespace
    put = kv_pb2.PutRequest(namespace_id=namespace, key=key, value=VALUE).SerializeToString()
    get = kv_pb2.GetRequest(namespace_id=namespace, key=key).SerializeToString()

    def body(method: str, message: bytes) -> Measurement:
        return grpc_body(node.pid, node.address, method, message, load, node.metadata)

    measured = {"rumor_grpc_put": body("/rumor.v1.KV/Put", put)}
    answer = grpc_unary(node.address, "/rumor.v1.KV/Get", get, node.metadata)
    _expect(kv_pb2.GetResponse.FromString(answer).value == VALUE, "Rumor gRPC Put read back")
    return measured | {"rumor_grpc_get": body("/rumor.v1.KV/Get", get)}


def rumor_sdk_rows(node: RumorServer, load: Load) -> dict[str, Measurement]:
    async def rows() -> dict[str, Measurement]:
        async with AsyncClient(node.address, api_token=node.token) as client:
            namespace = client.namespace(node.namespace)
            await namespace.put(KEY, VALUE)
            _expect(await namespace.get(KEY, "bytes") == VALUE, "Rumor SDK put read back by get")

            async def put(_caller: int) -> object:
                return await namespace.put(KEY, VALUE)

            async def get(_caller: int) -> object:
                return await namespace.get(KEY, "bytes")

            return {
                "rumor_sdk_put": await sdk_body(put, node.pid, load),
                "rumor_sdk_get": await sdk_body(get, node.pid, load),
            }

    return asyncio.run(rows())


def rumor_http_rows(node: RumorServer, load: Load) -> dict[str, Measurement]:
    url = (
        f"http://{node.http}/client/v4/accounts/bench/storage/kv/namespaces"
        f"/{node.namespace}/values/{KEY}"
    )
    authorization = f"authorization: Bearer {node.token}"
    put_headers = (":method: PUT", "content-type: application/octet-stream", authorization)
    _http(url, "PUT", VALUE, node.token)
    _expect(_http(url, "GET", None, node.token) == VALUE, "Rumor HTTP PUT read back by GET")
    return {
        "rumor_http_put": h2load_body(
            node.pid, url, load, body=VALUE, headers=put_headers, http1=True
        ),
        "rumor_http_get": h2load_body(node.pid, url, load, headers=(authorization,), http1=True),
    }


def etcd_rows(root: Path, load: Load, index: int) -> dict[str, Measurement]:
    key = KEY.encode()
    ranges = {
        "etcd_range_serializable": etcd_range_request(key, serializable=True),
        "etcd_range_linearizable": etcd_range_request(key, serializable=False),
    }
    with etcd_server(root) as etcd:

        def body(method: str, message: bytes) -> Measurement:
            return grpc_body(etcd.pid, etcd.address, f"/etcdserverpb.KV/{method}", message, load)

        measured = {"etcd_put": body("Put", etcd_put_request(key, VALUE))}
        for name, request in ranges.items():
            answer = grpc_unary(etcd.address, "/etcdserverpb.KV/Range", request)
            _expect(VALUE in answer, f"etcd Put read back by {name}")
            measured[name] = body("Range", request)
        return measured


def redis_rows(root: Path, load: Load, index: int) -> dict[str, Measurement]:
    with redis_server(root) as redis:
        _expect(redis_cli(redis.port, "SET", REDIS_KEY, VALUE.decode()) == "OK", "Redis SET")
        _expect(redis_cli(redis.port, "GET", REDIS_KEY) == VALUE.decode(), "Redis SET read back")
        measured = {}
        for pipeline, suffix in ((1, ""), (REDIS_PIPELINE, f"_p{REDIS_PIPELINE}")):
            _expect(redis_cli(redis.port, "DEL", REDIS_KEY) == "1", "Redis DEL")
            measured[f"redis_set{suffix}"] = redis_body(
                redis.pid, redis.port, "set", pipeline, len(VALUE), load
            )
            stored = redis_cli(redis.port, "STRLEN", REDIS_KEY)  # its SETs, not ours, wrote it
            _expect(stored == str(len(VALUE)), "redis-benchmark's SET read back")
            measured[f"redis_get{suffix}"] = redis_body(
                redis.pid, redis.port, "get", pipeline, len(VALUE), load
            )
        return measured


SYSTEMS = (echo_rows, rumor_rows, etcd_rows, redis_rows)


def one_round(root: Path, load: Load, index: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    for system in SYSTEMS:
        for key, measurement in system(root / f"{system.__name__}-{index}", load, index).items():
            figures |= measurement.figures(key)
    return figures


def run(*, quick: bool, runs: int) -> Result:
    try:
        ensure_programs()
    except RuntimeError as error:  # not root: the message names the packages to install
        raise SystemExit(str(error)) from None
    load = Load(1.0, 0.25, IN_FLIGHT) if quick else Load(5.0, 1.0, IN_FLIGHT)
    rounds = 1 if quick else ROUNDS if runs == DEFAULT_RUNS else runs
    pin_self(CLIENT_CORE)
    load_average_before = os.getloadavg()[0]
    with scratch_dir("peers") as root:
        figures = medians([one_round(root, load, index) for index in range(rounds)])
    print(table(figures))
    ops = {row.key: figures[f"{row.key}_ops_per_s"] for row in ROWS}
    ratios = {
        f"{row.key} / {ETCD_REFERENCE[row.kind]}": round(
            ops[row.key] / ops[ETCD_REFERENCE[row.kind]], 3
        )
        for row in ROWS
        if row.key not in ETCD_REFERENCE.values()
    }
    ratios["rumor_grpc_get / echo_get"] = round(ops["rumor_grpc_get"] / ops["echo_get"], 3)
    ratios["rumor_grpc_put / echo_put"] = round(ops["rumor_grpc_put"] / ops["echo_put"], 3)
    rumor = {k: v for k, v in figures.items() if k.startswith("rumor_")}
    peers = {k: v for k, v in figures.items() if not k.startswith("rumor_")}
    return Result(
        name="peers",
        quick=quick,
        runs=rounds,
        figures=rumor,
        baseline=peers,
        ratios=ratios,
        targets=[
            Target(name, ratios[ratio] if ratio in ratios else ops[ratio], ">=", limit, unit)
            for name, ratio, limit, unit in TARGETS
        ],
        notes=[
            f"servers on core {NODE_CORE}, clients on core {CLIENT_CORE}; {IN_FLIGHT} requests"
            f" in flight; {len(VALUE)}-byte values; {rounds} interleaved round(s) of"
            f" {load.seconds:g} s per body after {load.warmup:g} s of warm-up",
            f"load average {load_average_before:.1f} before, {os.getloadavg()[0]:.1f} after"
            " (other work on the cores makes every figure noisy)",
            *program_versions(),
        ],
    )


def table(figures: dict[str, float]) -> str:
    """system, op, ops/s, server CPU µs/op, the share of its core the server was busy
    (well under 1: it waited, on its disk or on a starved client) and the ratio to etcd."""
    lines = [
        f"{'system':15} {'op':24} {'ops/s':>10} {'server CPU µs/op':>17} {'busy':>5} {'/ etcd':>7}"
    ]
    for row in ROWS:
        ops = figures[f"{row.key}_ops_per_s"]
        reference = figures[f"{ETCD_REFERENCE[row.kind]}_ops_per_s"]
        cpu = figures[f"{row.key}_server_cpu_us_per_op"]
        lines.append(
            f"{row.system:15} {row.op:24} {ops:>10,.0f} {cpu:>17,.1f} {ops * cpu / 1e6:>5.2f}"
            f" {ops / reference:>7.2f}"
        )
    return "\n".join(lines)


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise BenchmarkFailed(f"{what} did not succeed: nothing is timed")


def _http(url: str, method: str, body: bytes | None, token: str) -> bytes:
    """One request to Rumor's HTTP API; its body (a status other than 2xx raises)."""
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/octet-stream")
    with urllib.request.urlopen(request, timeout=30) as answer:
        data: bytes = answer.read()
        return data
