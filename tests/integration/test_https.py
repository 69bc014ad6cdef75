"""HTTPS on the HTTP listener, against a test CA, with every client of the HTTP API.

A node serves its HTTP listener with ``--http-tls-cert``/``--http-tls-key``
(a certificate for localhost and 127.0.0.1 signed by a CA made here). Each
client trusts that CA and nothing else: the official Cloudflare Python SDK
(httpx), the Cloudflare TypeScript SDK and wrangler (node, with
``NODE_EXTRA_CA_CERTS``), and a Worker in workerd whose binding reaches the
node over HTTPS (``rumor worker dev --http-ca``). Plain HTTP to that port
gets no answer. With ``--http-tls-ca`` a client must present a certificate the
CA signed. A non-loopback HTTP listener without TLS refuses to start unless
``--http-behind-proxy`` (or ``--insecure``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudflare
import httpx
import pytest

from rumor.client import Client
from tests.support.js_clients import REPO, JsClients, install
from tests.support.nodes import NodeProcess, poll
from tests.support.pki import make_pki

TOKEN = "https-test-token"
ACCOUNT = "0" * 32
WORKER = REPO / "tests" / "js" / "worker.js"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def https_node(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    root = tmp_path_factory.mktemp("https")
    node = NodeProcess(
        root / "data", "--http", "127.0.0.1:0", "--api-token", TOKEN,
        "--http-tls-cert", str(pki / "node.pem"), "--http-tls-key", str(pki / "node.key"),
    )  # fmt: skip
    node.start()
    try:
        yield node
    finally:
        node.stop()


def _trusting(pki: Path, presenting: str | None = None) -> ssl.SSLContext:
    """A client context that trusts the test CA (and presents ``presenting``'s certificate)."""
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if presenting is not None:
        context.load_cert_chain(str(pki / f"{presenting}.pem"), str(pki / f"{presenting}.key"))
    return context


def _base(node: NodeProcess) -> str:
    return f"https://{node.http}/client/v4"


def test_the_cloudflare_python_sdk_over_https(https_node: NodeProcess, pki: Path) -> None:
    with httpx.Client(verify=_trusting(pki)) as http:
        cf = cloudflare.Cloudflare(
            api_token=TOKEN, base_url=_base(https_node), max_retries=0, http_client=http
        )
        ns = cf.kv.namespaces.create(account_id=ACCOUNT, title="over-https")
        assert ns is not None and ns.id
        cf.kv.namespaces.values.update(
            "k", account_id=ACCOUNT, namespace_id=ns.id, value=b"secret value", metadata="{}"
        )
        got = cf.kv.namespaces.values.get("k", account_id=ACCOUNT, namespace_id=ns.id)
        assert got.read() == b"secret value"
    with Client(https_node.address, api_token=TOKEN) as kv:  # gRPC is unchanged
        assert kv.namespace(ns.id).get("k") == "secret value"
        assert kv.listeners().http == f"https://{https_node.http}"


def test_plain_http_and_an_untrusted_certificate_get_nothing(
    https_node: NodeProcess, pki: Path
) -> None:
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
        httpx.get(f"http://{https_node.http}/healthz", timeout=5)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"https://{https_node.http}/healthz", timeout=5, verify=True)
    answer = httpx.get(f"https://{https_node.http}/healthz", verify=_trusting(pki))
    assert answer.status_code == 200


def _node_env(pki: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "NODE_EXTRA_CA_CERTS": str(pki / "ca.pem"),
        **extra,
    }


def test_the_typescript_sdk_over_https(https_node: NodeProcess, pki: Path) -> None:
    js = install()
    script = js.root / "ts_sdk.mjs"
    shutil.copyfile(REPO / "tests" / "js" / "ts_sdk.mjs", script)
    result = subprocess.run(
        [js.node, str(script)],
        cwd=js.root,
        env=_node_env(pki, RUMOR_BASE_URL=_base(https_node), RUMOR_API_TOKEN=TOKEN),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["value"] == "hello" and out["metadata"] == {"lang": "en"}


def test_wrangler_over_https(https_node: NodeProcess, pki: Path, tmp_path: Path) -> None:
    js: JsClients = install()
    (tmp_path / "xdg").mkdir()
    env = _node_env(
        pki,
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "xdg"),
        CI="true",
        WRANGLER_SEND_METRICS="false",
        NO_COLOR="1",
        CLOUDFLARE_API_BASE_URL=_base(https_node),
        CLOUDFLARE_API_TOKEN=TOKEN,
        CLOUDFLARE_ACCOUNT_ID="f" * 32,
    )

    def wrangler(*args: str) -> str:
        result = subprocess.run(
            [*js.wrangler, "kv", *args], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    wrangler("namespace", "create", "wrangler-https")
    with Client(https_node.address, api_token=TOKEN) as kv:
        ns = next(n.id for n in kv.namespaces.list() if n.title == "wrangler-https")
    wrangler("key", "put", "greeting", "hello", "--namespace-id", ns, "--remote")
    got = wrangler("key", "get", "greeting", "--namespace-id", ns, "--remote", "--text")
    assert got.strip() == "hello"


def test_a_worker_binding_over_https(https_node: NodeProcess, pki: Path, tmp_path: Path) -> None:
    install()
    with Client(https_node.address, api_token=TOKEN) as kv:
        ns = kv.namespaces.create("binding-https").id
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "worker.log"
    command = [
        str(Path(sys.executable).with_name("rumor")), "worker", "dev", str(WORKER),
        "--kv", f"KV={ns}", "--port", str(port), "--endpoint", https_node.address,
        "--http-ca", str(pki / "ca.pem"),
    ]  # fmt: skip
    env = {**os.environ, "RUMOR_CACHE_DIR": str(REPO / ".rumor"), "RUMOR_API_TOKEN": TOKEN}
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:

        def ready() -> bool:
            assert process.poll() is None, log.read_text(errors="replace")
            return "Ready on http://" in log.read_text(errors="replace")

        poll(ready, timeout=120, interval=0.1)
        assert f"https://{https_node.http}" in log.read_text(errors="replace")

        def call(op: str, **fields: Any) -> Any:
            body = json.dumps({"op": op, **fields}).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body)
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())

        assert call("put", key="k", value="through workerd over TLS") == {
            "ok": True,
            "result": None,
        }
        assert call("get", key="k") == {"ok": True, "result": "through workerd over TLS"}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    with Client(https_node.address, api_token=TOKEN) as kv:
        assert kv.namespace(ns).get("k") == "through workerd over TLS"


def test_client_certificates_with_an_http_ca(pki: Path, tmp_path: Path) -> None:
    with NodeProcess(
        tmp_path / "data", "--http", "127.0.0.1:0", "--api-token", TOKEN,
        "--http-tls-cert", str(pki / "node.pem"), "--http-tls-key", str(pki / "node.key"),
        "--http-tls-ca", str(pki / "ca.pem"),
    ) as node:  # fmt: skip
        url = f"https://{node.http}/healthz"
        refused = (httpx.ReadError, httpx.ConnectError, httpx.RemoteProtocolError)
        with pytest.raises(refused):
            httpx.get(url, verify=_trusting(pki), timeout=5)
        with pytest.raises(refused):
            httpx.get(url, verify=_trusting(pki, "rogue"), timeout=5)
        assert httpx.get(url, verify=_trusting(pki, "client"), timeout=5).status_code == 200


def _exits(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rumor.node", "--data-dir", str(tmp_path / "refused"),
         "--listen", "127.0.0.1:0", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_an_exposed_http_listener_needs_tls_or_a_proxy(tmp_path: Path, pki: Path) -> None:
    refused = _exits(tmp_path, "--http", "0.0.0.0:0", "--api-token", TOKEN)
    assert refused.returncode == 1
    assert "refusing to serve plain HTTP on 0.0.0.0:0" in refused.stderr
    assert "--http-behind-proxy" in refused.stderr
    with NodeProcess(
        tmp_path / "proxied", "--http", "0.0.0.0:0", "--api-token", TOKEN, "--http-behind-proxy"
    ) as proxied:
        assert proxied.http.startswith("0.0.0.0:")
    with NodeProcess(
        tmp_path / "tls", "--http", "0.0.0.0:0", "--api-token", TOKEN,
        "--http-tls-cert", str(pki / "node.pem"), "--http-tls-key", str(pki / "node.key"),
    ) as secured:  # fmt: skip
        port = secured.http.rsplit(":", 1)[1]
        answer = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=_trusting(pki))
        assert answer.status_code == 200
    broken = _exits(tmp_path, "--http", "127.0.0.1:0", "--http-tls-cert", str(pki / "node.pem"))
    assert broken.returncode == 1
    assert "--http-tls-cert and --http-tls-key go together" in broken.stderr


def test_workers_serve_https_too(pki: Path, tmp_path: Path) -> None:
    with NodeProcess(
        tmp_path / "data", "--workers", "2", "--http", "127.0.0.1:0", "--api-token", TOKEN,
        "--http-tls-cert", str(pki / "node.pem"), "--http-tls-key", str(pki / "node.key"),
    ) as node:  # fmt: skip
        base = f"https://{node.http}/client/v4/accounts/{ACCOUNT}/storage/kv/namespaces"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for _ in range(6):  # new connections: the kernel spreads them over the workers
            with httpx.Client(verify=_trusting(pki), headers=auth) as http:
                assert http.get(base).status_code == 200
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
            httpx.get(f"http://{node.http}/healthz", timeout=5)
