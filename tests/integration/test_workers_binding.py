"""Real Worker code in real workerd against a real 3-node cluster.

Two `rumor worker dev` processes run the same test Worker (tests/js/worker.js),
one bound through node 1's HTTP listener and one through node 2's: what one
writes with ``env.KV.put`` (strings, ArrayBuffers, ReadableStreams, with
expiration, expirationTtl and metadata) the other reads back, lists, bulk-gets
and deletes. Keys that collide with the listener's own routes (``metrics``,
``healthz``, ``client/v4/a``, ``bulk/get``, ``ui/x``), a key with a newline and
one with non-ASCII characters stay keys. Errors reach JS as workerd words them:
``KV PUT failed: 400 <Rumor's message>``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import Cluster
from tests.support.js_clients import REPO, install
from tests.support.nodes import NodeProcess, create_namespace, poll

WORKER = REPO / "tests" / "js" / "worker.js"
TITLE = "workers-binding"
RUMOR = [str(Path(sys.executable).with_name("rumor"))]
ROUTE_LIKE_KEYS = ["metrics", "healthz", "client/v4/a", "bulk/get", "ui/x", "a\nb", "ключ-ü-🔑"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class WorkerDev:
    """`rumor worker dev` serving the test Worker, its KV binding through ``node``."""

    def __init__(self, node: NodeProcess, namespace: str, log: Path) -> None:
        self.port = _free_port()
        self.log_path = log
        command = [
            *RUMOR, "worker", "dev", str(WORKER),
            "--kv", f"KV={namespace}", "--port", str(self.port), "--endpoint", node.address,
        ]  # fmt: skip
        env = {**os.environ, "RUMOR_CACHE_DIR": str(REPO / ".rumor")}
        with log.open("wb") as handle:
            self.process = subprocess.Popen(
                command, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        poll(self._ready, timeout=120, interval=0.1)

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"rumor worker dev exited:\n{self.log()}")
        return "Ready on http://" in self.log()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def call(self, op: str, **fields: Any) -> Any:
        body = json.dumps({"op": op, **fields}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/", data=body)
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: Any = json.loads(response.read())
        return answer

    def ok(self, op: str, **fields: Any) -> Any:
        answer = self.call(op, **fields)
        assert answer["ok"], answer
        return answer["result"]

    def error(self, op: str, **fields: Any) -> str:
        answer = self.call(op, **fields)
        assert not answer["ok"], answer
        return str(answer["error"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    install()  # fails clearly without node and npm
    nodes = Cluster(
        tmp_path_factory.mktemp("cluster"), 3, "--http", "127.0.0.1:0",
        "--min-expiration-ttl", "60",
    )  # fmt: skip
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture(scope="module")
def workers(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[WorkerDev]]:
    namespace = create_namespace(cluster.nodes[0], TITLE)
    logs = tmp_path_factory.mktemp("workers")
    started: list[WorkerDev] = []
    try:
        # The first names the namespace by id, the second by title.
        for index, (node, name) in enumerate(
            zip(cluster.nodes[:2], (namespace, TITLE), strict=True)
        ):
            started.append(WorkerDev(node, name, logs / f"worker-{index}.log"))
        yield started
    finally:
        for worker in started:
            worker.stop()


def _until_seen(reader: WorkerDev, key: str, expected: Any, **options: Any) -> None:
    poll(lambda: reader.ok("get", key=key, options=options or None) == expected, timeout=10)


def test_worker_dev_says_which_namespace_and_listener_it_uses(workers: list[WorkerDev]) -> None:
    assert "(matched by id)" in workers[0].log()
    assert f'(matched by title "{TITLE}")' in workers[1].log()
    assert "KV through the node's HTTP listener 127.0.0.1:" in workers[1].log()


def test_strings_array_buffers_and_streams_written_on_one_node_read_on_another(
    workers: list[WorkerDev],
) -> None:
    writer, reader = workers
    now = int(time.time())
    writer.ok("put", key="text", value="hello", options={"metadata": {"kind": "text"}})
    writer.ok(
        "put", key="buffer", value="bytes ü", kind="arrayBuffer", options={"expirationTtl": 600}
    )
    writer.ok("put", key="stream", value="streamed " * 1000, kind="stream",
              options={"expiration": now + 3600, "metadata": {"n": 1}})  # fmt: skip
    _until_seen(reader, "stream", "streamed " * 1000)
    _until_seen(reader, "text", "hello")
    assert reader.ok("get", key="buffer", options={"type": "arrayBuffer"}) == {
        "arrayBuffer": "bytes ü"
    }
    assert reader.ok("get", key="stream", options={"type": "stream"}) == {
        "stream": "streamed " * 1000
    }
    assert reader.ok("getWithMetadata", key="text", options={"type": "text", "cacheTtl": 60}) == {
        "value": "hello",
        "metadata": {"kind": "text"},
    }
    assert reader.ok("getWithMetadata", key="stream", options={"type": "stream"}) == {
        "value": {"stream": "streamed " * 1000},
        "metadata": {"n": 1},
    }
    listing = reader.ok("list", options={"prefix": "stream"})
    assert listing["list_complete"] is True
    assert listing["keys"] == [{"name": "stream", "expiration": now + 3600, "metadata": {"n": 1}}]
    buffer = reader.ok("list", options={"prefix": "buffer"})["keys"][0]
    assert now + 600 <= buffer["expiration"] <= int(time.time()) + 600


def test_keys_named_like_routes_or_with_newlines_stay_keys(workers: list[WorkerDev]) -> None:
    writer, reader = workers
    for index, key in enumerate(ROUTE_LIKE_KEYS):
        writer.ok("put", key=key, value=f"value {index}", options={"metadata": {"key": key}})
    for index, key in enumerate(ROUTE_LIKE_KEYS):
        _until_seen(reader, key, f"value {index}")
        assert reader.ok("getWithMetadata", key=key)["metadata"] == {"key": key}
    names = {entry["name"] for entry in reader.ok("list")["keys"]}
    assert set(ROUTE_LIKE_KEYS) <= names
    found = reader.ok("bulkGet", keys=ROUTE_LIKE_KEYS)
    assert found == {key: f"value {i}" for i, key in enumerate(ROUTE_LIKE_KEYS)}
    reader.ok("delete", key="metrics")
    poll(lambda: writer.ok("get", key="metrics") is None, timeout=10)
    assert writer.ok("get", key="healthz") == "value 1"


def test_list_pages_with_prefix_limit_and_cursor(workers: list[WorkerDev]) -> None:
    writer, reader = workers
    for index in range(5):
        writer.ok("put", key=f"page:{index}", value=str(index))
    _until_seen(reader, "page:4", "4")
    first = reader.ok("list", options={"prefix": "page:", "limit": 2})
    assert [k["name"] for k in first["keys"]] == ["page:0", "page:1"]
    assert first["list_complete"] is False
    rest = reader.ok("list", options={"prefix": "page:", "cursor": first["cursor"]})
    assert [k["name"] for k in rest["keys"]] == ["page:2", "page:3", "page:4"]
    assert rest["list_complete"] is True
    # workerd drops a limit of 0 or less: the default page.
    assert len(reader.ok("list", options={"prefix": "page:", "limit": 0})["keys"]) == 5
    spaced = "with space+plus"
    writer.ok("put", key=spaced, value="s")
    _until_seen(reader, spaced, "s")
    assert [k["name"] for k in reader.ok("list", options={"prefix": "with space+"})["keys"]] == [
        spaced
    ]


def test_bulk_get_text_json_metadata_and_cache_ttl(workers: list[WorkerDev]) -> None:
    writer, reader = workers
    writer.ok("put", key="j1", value='{"a": 1}', options={"metadata": {"m": 1}})
    writer.ok("put", key="plain", value="not json")
    _until_seen(reader, "plain", "not json")
    assert reader.ok("bulkGet", keys=["j1", "missing"], options={"type": "json"}) == {
        "j1": {"a": 1},
        "missing": None,
    }
    assert reader.ok("bulkGetWithMetadata", keys=["j1", "missing"], options={"cacheTtl": 60}) == {
        "j1": {"value": '{"a": 1}', "metadata": {"m": 1}},
        "missing": None,
    }
    assert reader.error("bulkGet", keys=["plain"], options={"type": "json"}) == (
        "Error: KV GET_BULK failed: 400 At least one of the requested keys corresponds to a"
        " non-json value"
    )
    assert reader.error("bulkGet", keys=["j1"], options={"type": "arrayBuffer"}) == (
        'Error: KV GET_BULK failed: 400 "arrayBuffer" is not a valid type. Use "json" or "text"'
    )
    assert reader.error("bulkGet", keys=["j1"], options={"cacheTtl": 10}) == (
        "Error: KV GET_BULK failed: 400 Invalid cache_ttl of 10. Cache TTL must be at least 30."
    )


def test_errors_reach_js_as_workerd_words_them(workers: list[WorkerDev]) -> None:
    writer, _ = workers
    assert writer.error("put", key="short", value="x", options={"expirationTtl": 10}) == (
        "Error: KV PUT failed: 400 Invalid expiration_ttl of 10. Expiration TTL must be at"
        " least 60."
    )
    assert writer.error("get", key="k", options={"cacheTtl": 10}) == (
        "Error: KV GET failed: 400 Invalid cache_ttl of 10. Cache TTL must be at least 30."
    )
    soon = int(time.time()) + 30
    assert writer.error("put", key="soon", value="x", options={"expiration": soon}) == (
        f"Error: KV PUT failed: 400 Invalid expiration of {soon}. Expiration times must be"
        " at least 60 seconds in the future."
    )
    too_big = "x" * 1025
    assert writer.error("put", key="m", value="x", options={"metadata": too_big}) == (
        "Error: KV PUT failed: 413 Metadata length of 1027 exceeds limit of 1024."
    )
    for key in ("short", "soon", "m"):
        assert writer.ok("get", key=key) is None


def test_worker_dev_refuses_typescript_and_imports(cluster: Cluster, tmp_path: Path) -> None:
    script = tmp_path / "index.ts"
    script.write_text("export default { fetch() { return new Response('x') } }")
    imports = tmp_path / "imports.js"
    imports.write_text("import { x } from './util.js';\nexport default { fetch() {} }")
    for path, expected in ((script, "index.ts is not"), (imports, 'imports "./util.js"')):
        result = subprocess.run(
            [*RUMOR, "worker", "dev", str(path),
             "--kv", "KV=whatever", "--endpoint", cluster.nodes[0].address],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode != 0
        assert "one ES-module JavaScript file" in result.stderr and expected in result.stderr


def test_worker_config_is_private_and_never_prints_the_token(
    cluster: Cluster, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    out = tmp_path / "conf" / "worker.capnp"
    out.parent.mkdir()
    result = subprocess.run(
        [*RUMOR, "worker", "config", str(WORKER),
         "--kv", "KV=config-ns", "--out", str(out), "--api-token-file", str(token_file),
         "--endpoint", cluster.nodes[1].address],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "s3cret-token" not in result.stdout + result.stderr
    assert 'created with title "config-ns"' in result.stderr
    text = out.read_text()
    assert (out.stat().st_mode & 0o777) == 0o600
    assert '"Bearer s3cret-token"' in text and "Rumor-Namespace" in text
    assert f'embed "{os.path.relpath(WORKER, out.parent)}"' in text
    assert cluster.nodes[1].http in text
