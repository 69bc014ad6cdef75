"""The external load generators of ``rumor bench peers``: h2load and redis-benchmark.

h2load (nghttp2) drives every HTTP/2 server and Rumor's HTTP/1.1 API, so the
gRPC servers (Rumor, the grpc.aio echo server, etcd) and the REST API meet the
same client. A gRPC unary call is an HTTP/2 POST to ``/package.Service/Method``
with ``content-type: application/grpc``, ``te: trailers`` and a body of one
length-prefixed message (``grpc_frame``); h2load sends the same body for every
request. h2load cannot read gRPC trailers, so a call that fails with a
grpc-status other than 0 still counts as an HTTP 200: whoever times a body
proves first that one call with it succeeds. redis-benchmark drives Redis,
whose protocol h2load does not speak.

Each run is pinned to the client core and must report zero failed, errored or
timed-out requests; anything else raises ``LoadFailed`` with the tool's output.
"""

from __future__ import annotations

import csv
import io
import re
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rumor.bench.common import CLIENT_CORE, pin_prefix

GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")
_FINISHED = re.compile(r"finished in [\d.]+m?s, ([\d.]+) req/s")
_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded,"
    r" (\d+) failed, (\d+) errored, (\d+) timeout"
)


class LoadFailed(RuntimeError):
    """A load generator reported failed requests, or could not run."""


@dataclass(frozen=True)
class LoadRun:
    """What a load generator reported: completed requests and their rate."""

    requests: int
    requests_per_s: float


def grpc_frame(message: bytes) -> bytes:
    """One gRPC message on the wire: uncompressed flag, 4-byte big-endian length, bytes."""
    return b"\0" + struct.pack(">I", len(message)) + message


def h2load(
    url: str,
    *,
    seconds: float,
    in_flight: int,
    body: bytes | None = None,
    headers: tuple[str, ...] = (),
    http1: bool = False,
    connections: int = 1,
    pinned: bool = True,
) -> LoadRun:
    """Run h2load against ``url`` for ``seconds`` with ``in_flight`` requests outstanding.

    HTTP/2 (prior knowledge, as gRPC clients do): ``connections`` connections
    (one by default, as one gRPC channel) sharing ``in_flight`` concurrent
    streams. HTTP/1.1 (``http1``): ``in_flight`` connections, one request each
    at a time. A ``body`` is POSTed unless a ``:method`` header says otherwise.
    ``pinned``: h2load on the client core, else wherever the kernel puts it.
    """
    if http1:
        connections, streams = in_flight, 1
    else:
        streams = max(1, in_flight // connections)
    command = [
        *(pin_prefix(CLIENT_CORE) if pinned else []),
        "h2load",
        "--duration",
        f"{round(seconds * 1000)}ms",  # h2load takes whole units only
        "--clients",
        str(connections),
        "--max-concurrent-streams",
        str(streams),
        *(["--h1"] if http1 else []),
    ]
    for header in headers:
        command += ["--header", header]
    with tempfile.TemporaryDirectory(prefix="rumor-bench-h2load-") as scratch:
        if body is not None:
            data = Path(scratch) / "body"
            data.write_bytes(body)
            command += ["--data", str(data)]
        output = run_tool([*command, url], timeout=seconds + 60)
    return parse_h2load(output)


def parse_h2load(output: str) -> LoadRun:
    """The completed requests and rate of an h2load report; ``LoadFailed`` unless every
    completed request succeeded (a 2xx or 3xx status, no reset, no timeout)."""
    finished, requests = _FINISHED.search(output), _REQUESTS.search(output)
    if finished is None or requests is None:
        raise LoadFailed(f"h2load printed no report:\n{output[-3000:]}")
    done, succeeded, failed, errored, timeout = (int(requests.group(i)) for i in range(3, 8))
    if failed or errored or timeout or succeeded != done or done == 0:
        raise LoadFailed(f"h2load reported failed requests:\n{output[-3000:]}")
    return LoadRun(requests=done, requests_per_s=float(finished.group(1)))


def redis_benchmark(
    port: int, test: str, *, requests: int, in_flight: int, pipeline: int, value_bytes: int
) -> LoadRun:
    """Run redis-benchmark's ``test`` (``get`` or ``set``) for ``requests`` requests.

    ``in_flight`` requests are outstanding: ``in_flight / pipeline`` connections,
    each with ``pipeline`` commands sent at once. redis-benchmark stops at the
    first error reply and exits non-zero, which raises here.
    """
    if in_flight % pipeline:
        raise ValueError(f"{in_flight} in flight is not a multiple of pipeline {pipeline}")
    command = [
        *pin_prefix(CLIENT_CORE),
        "redis-benchmark",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-c",
        str(in_flight // pipeline),
        "-P",
        str(pipeline),
        "-n",
        str(requests),
        "-d",
        str(value_bytes),
        "-t",
        test,
        "--csv",
    ]
    output = run_tool(command, timeout=600)
    rows = [row for row in csv.DictReader(io.StringIO(output)) if row.get("test")]
    if len(rows) != 1 or rows[0]["test"].lower() != test:
        raise LoadFailed(f"redis-benchmark printed no {test} result:\n{output[-3000:]}")
    return LoadRun(requests=requests, requests_per_s=float(rows[0]["rps"]))


def run_tool(command: list[str], timeout: float) -> str:
    try:
        finished = subprocess.run(
            command, check=False, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as error:
        raise LoadFailed(f"{command[0]} ran over {timeout:g} s") from error
    if finished.returncode != 0:
        raise LoadFailed(
            f"{' '.join(command)} exited with {finished.returncode}:\n"
            f"{finished.stdout[-2000:]}\n{finished.stderr[-2000:]}"
        )
    return finished.stdout
