"""Scoped API tokens on a real node, through every client: SDK, `rumor kv`, REST, binding, console.

The node (once as one process, once with ``--workers 2``) reads a token file:
an admin token, a read-only token, a token given only by its SHA-256 with
``read,write`` on namespaces titled ``team-*``. Each client is a real one:
the Python SDK over gRPC (its Batch stream and unary calls), the `rumor kv`
CLI, the official Cloudflare Python SDK over the REST API, the Workers
binding protocol as workerd speaks it, and the web console's API. A refusal
is PERMISSION_DENIED / HTTP 403 with Cloudflare's code 10000 "Authentication
error"; the audit log names the refused token by its id, never the token.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudflare
import grpc
import pytest

from rumor.client import Client
from rumor.client.errors import AuthenticationError, PermissionDeniedError
from rumor.v1 import admin_pb2, admin_pb2_grpc, kv_pb2, kv_pb2_grpc
from tests.support.js_clients import REPO, install
from tests.support.nodes import NodeProcess, poll

ADMIN = "admin-token-for-tests"
READER = "reader-token-for-tests"
TEAM = "team-token-for-tests"  # the file holds only its SHA-256
ACCOUNT = "0" * 32
WORKER = REPO / "tests" / "js" / "worker.js"


def _token_id(token: str) -> str:
    return "tok-" + hashlib.sha256(token.encode()).hexdigest()[:12]


@dataclass
class Scoped:
    node: NodeProcess
    audit: Path
    team_ns: str
    other_ns: str


@pytest.fixture(scope="module", params=["one-process", "two-workers"])
def scoped(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scoped]:
    root = tmp_path_factory.mktemp(request.param)
    tokens = root / "tokens"
    team_digest = hashlib.sha256(TEAM.encode()).hexdigest()
    tokens.write_text(
        f"# who may do what\n{ADMIN}\n{READER} read   # dashboards\n"
        f"sha256:{team_digest} read,write team-*\n"
    )
    audit = root / "audit.jsonl"
    workers = ("--workers", "2") if request.param == "two-workers" else ()
    node = NodeProcess(
        root / "data", "--http", "127.0.0.1:0", "--api-token-file", str(tokens),
        "--audit-log", str(audit), *workers,
    )  # fmt: skip
    node.start()
    try:
        with Client(node.address, api_token=ADMIN) as admin:
            team_ns = admin.namespaces.create("team-sessions").id
            other_ns = admin.namespaces.create("billing").id
            admin.namespace(team_ns).put("k", "team value")
            admin.namespace(other_ns).put("k", "billing value")
        yield Scoped(node, audit, team_ns, other_ns)
    finally:
        node.stop()


# ---- gRPC: the Python SDK and `rumor kv` ----------------------------------------


def test_a_read_only_token_reads_but_cannot_write_or_delete(scoped: Scoped) -> None:
    with Client(scoped.node.address, api_token=READER, timeout=10) as reader:
        assert reader.namespace(scoped.team_ns).get("k") == "team value"
        assert {ns.id for ns in reader.namespaces.list()} >= {scoped.team_ns, scoped.other_ns}
        assert [key.name for key in reader.namespace(scoped.other_ns).list().keys] == ["k"]
        with pytest.raises(PermissionDeniedError) as refused:
            reader.namespace(scoped.team_ns).put("k", "overwritten")
        assert refused.value.status == 403
        assert "KV PUT failed: 403 Authentication error" in str(refused.value)
        assert "needs write" in refused.value.message
        with pytest.raises(PermissionDeniedError):
            reader.namespace(scoped.team_ns).delete("k")
        with pytest.raises(PermissionDeniedError):
            reader.namespaces.delete(scoped.other_ns)
        with pytest.raises(PermissionDeniedError):
            reader.namespaces.create("sneaky")
        assert reader.namespace(scoped.team_ns).get("k") == "team value"  # still there


def test_one_refused_operation_of_a_batch_fails_alone(scoped: Scoped) -> None:
    channel = grpc.insecure_channel(scoped.node.address)
    try:
        stub = kv_pb2_grpc.KVStub(channel)
        frame = kv_pb2.BatchRequest(
            ops=[
                kv_pb2.BatchOp(id=1, get=kv_pb2.GetRequest(namespace_id=scoped.team_ns, key=b"k")),
                kv_pb2.BatchOp(
                    id=2, put=kv_pb2.PutRequest(namespace_id=scoped.team_ns, key=b"k", value=b"x")
                ),
            ]
        )
        metadata = (("authorization", f"Bearer {READER}"),)
        results: dict[int, Any] = {}
        for response in stub.Batch(iter([frame]), metadata=metadata, timeout=10):
            for result in response.results:
                results[result.id] = result
        assert results[1].get.found and results[1].get.value == b"team value"
        assert results[2].error.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
        assert results[2].error.http_status == 403
        with pytest.raises(grpc.RpcError) as unauthenticated:
            stub.Get(kv_pb2.GetRequest(namespace_id=scoped.team_ns, key=b"k"), timeout=10)
        assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as denied:
            stub.Delete(
                kv_pb2.DeleteRequest(namespace_id=scoped.team_ns, key=b"k"),
                metadata=metadata,
                timeout=10,
            )
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        channel.close()


def test_a_namespace_limited_token_sees_and_touches_only_its_namespaces(scoped: Scoped) -> None:
    with Client(scoped.node.address, api_token=TEAM, timeout=10) as team:
        assert [ns.id for ns in team.namespaces.list()] == [scoped.team_ns]
        # Pages are filled with what the token may see: one page of one, complete.
        page = team.namespaces.list_page(limit=1)
        assert [ns.id for ns in page.namespaces] == [scoped.team_ns] and page.list_complete
        team.namespace(scoped.team_ns).put("written", "by team")
        assert team.namespace(scoped.team_ns).get("written") == "by team"
        with pytest.raises(PermissionDeniedError):
            team.namespace(scoped.other_ns).get("k")
        with pytest.raises(PermissionDeniedError):
            team.namespace(scoped.other_ns).list()
        with pytest.raises(PermissionDeniedError):
            team.namespaces.create("team-new")  # read,write: no admin
    with Client(scoped.node.address, api_token="not-a-token", timeout=10) as stranger:
        with pytest.raises(AuthenticationError) as unknown:
            stranger.namespace(scoped.team_ns).get("k")
        assert not isinstance(unknown.value, PermissionDeniedError)


def test_the_cli_shows_the_refusal(scoped: Scoped) -> None:
    def rumor_kv(token: str, *args: str) -> subprocess.CompletedProcess[str]:
        rumor = Path(sys.executable).with_name("rumor")
        return subprocess.run(
            [str(rumor), "kv", "--endpoint", scoped.node.address, "--api-token", token, *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    read = rumor_kv(READER, "key", "get", "k", "--namespace-id", scoped.team_ns)
    assert read.returncode == 0 and read.stdout.strip() == "team value", read.stderr
    refused = rumor_kv(READER, "key", "put", "k", "v", "--namespace-id", scoped.team_ns)
    assert refused.returncode != 0
    assert "Authentication error" in refused.stderr and "needs write" in refused.stderr


def test_an_admin_token_may_do_everything(scoped: Scoped) -> None:
    with Client(scoped.node.address, api_token=ADMIN, timeout=10) as admin:
        created = admin.namespaces.create("scratch")
        admin.namespace(created.id).put("a", "b")
        admin.namespaces.rename(created.id, "scratch-2")
        admin.namespaces.delete(created.id)
        assert created.id not in {ns.id for ns in admin.namespaces.list()}


# ---- REST: the official Cloudflare Python SDK ----------------------------------------


def _cloudflare(scoped: Scoped, token: str) -> cloudflare.Cloudflare:
    return cloudflare.Cloudflare(
        api_token=token, base_url=f"http://{scoped.node.http}/client/v4", max_retries=0
    )


def test_the_cloudflare_sdk_gets_cloudflares_403(scoped: Scoped) -> None:
    reader = _cloudflare(scoped, READER)
    kv = reader.kv.namespaces
    got = kv.values.get("k", account_id=ACCOUNT, namespace_id=scoped.team_ns)
    assert got.read() == b"team value"
    with pytest.raises(cloudflare.PermissionDeniedError) as refused:
        kv.values.update(
            "k", account_id=ACCOUNT, namespace_id=scoped.team_ns, value=b"x", metadata="{}"
        )
    assert refused.value.status_code == 403
    body = refused.value.body
    assert isinstance(body, dict)
    assert body["success"] is False
    assert body["errors"] == [{"code": 10000, "message": "Authentication error"}]
    with pytest.raises(cloudflare.PermissionDeniedError):
        kv.delete(account_id=ACCOUNT, namespace_id=scoped.other_ns)
    with pytest.raises(cloudflare.PermissionDeniedError):
        kv.bulk_update(
            account_id=ACCOUNT, namespace_id=scoped.team_ns, body=[{"key": "a", "value": "b"}]
        )

    team = _cloudflare(scoped, TEAM)
    listed = [ns.id for ns in team.kv.namespaces.list(account_id=ACCOUNT)]
    assert listed == [scoped.team_ns]
    with pytest.raises(cloudflare.PermissionDeniedError):
        team.kv.namespaces.keys.list(account_id=ACCOUNT, namespace_id=scoped.other_ns)
    with pytest.raises(cloudflare.PermissionDeniedError):
        team.kv.namespaces.get(account_id=ACCOUNT, namespace_id=scoped.other_ns)


# ---- the Workers binding, as workerd calls it --------------------------------------


def _http(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.reason, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.reason, error.read()


def test_the_workers_binding_honours_scopes(scoped: Scoped) -> None:
    def binding(token: str, namespace: str) -> dict[str, str]:
        return {
            "Rumor-Namespace": namespace,
            "Authorization": f"Bearer {token}",
            "Host": "fake-host",
        }

    base = f"http://{scoped.node.http}"
    status, _, body = _http(f"{base}/k?urlencoded=true", headers=binding(READER, scoped.team_ns))
    assert (status, body) == (200, b"team value")
    status, reason, _ = _http(
        f"{base}/k?urlencoded=true", "PUT", b"x", headers=binding(READER, scoped.team_ns)
    )
    assert status == 403 and reason.startswith("Authentication error")
    status, _, _ = _http(f"{base}/?key_count_limit=10", headers=binding(TEAM, scoped.other_ns))
    assert status == 403
    status, _, _ = _http(
        f"{base}/w?urlencoded=true", "PUT", b"x", headers=binding(TEAM, scoped.team_ns)
    )
    assert status == 200


def test_the_rest_values_routes_honour_scopes(scoped: Scoped) -> None:
    """A plain key is answered before routing (by a worker itself, with workers), an
    escaped one through the router: both check the scope and the namespace alike."""

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    base = f"http://{scoped.node.http}/client/v4/accounts/{ACCOUNT}/storage/kv/namespaces"
    for key in ("rest", "rest%21"):
        team_value = f"{base}/{scoped.team_ns}/values/{key}"
        status, _, _ = _http(team_value, headers=bearer(READER))
        assert status in (200, 404)
        status, _, body = _http(team_value, "PUT", b"x", bearer(READER))
        assert status == 403
        assert json.loads(body)["errors"] == [{"code": 10000, "message": "Authentication error"}]
        status, _, _ = _http(team_value, "DELETE", None, bearer(READER))
        assert status == 403
        status, _, _ = _http(f"{base}/{scoped.other_ns}/values/{key}", headers=bearer(TEAM))
        assert status == 403
        status, _, _ = _http(team_value, "PUT", b"by team", bearer(TEAM))
        assert status == 200
    status, _, body = _http(f"{base}/{scoped.team_ns}/values/rest", headers=bearer(READER))
    assert (status, body) == (200, b"by team")

    def refused_puts() -> bool:  # one per key: before routing and through the router
        events = map(json.loads, scoped.audit.read_text().splitlines())
        refused = [
            event
            for event in events
            if event.get("event") == "refused"
            and event.get("operation") == "values.update"
            and event.get("token") == _token_id(READER)
        ]
        return len(refused) >= 2

    poll(refused_puts, timeout=10)


# ---- the web console -------------------------------------------------------------


def test_the_console_session_keeps_the_tokens_scopes(scoped: Scoped) -> None:
    base = f"http://{scoped.node.http}/ui/api"
    login = urllib.request.Request(
        f"{base}/login",
        data=json.dumps({"token": READER}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(login, timeout=10) as response:
        csrf = json.load(response)["result"]["csrf"]
        cookie = response.headers["Set-Cookie"].split(";", 1)[0]
    session = {"Cookie": cookie, "X-CSRF-Token": csrf, "Content-Type": "application/json"}
    status, _, body = _http(f"{base}/namespaces/{scoped.team_ns}/value?key=k", headers=session)
    assert status == 200 and json.loads(body)["result"]["text"] == "team value"
    status, _, body = _http(
        f"{base}/namespaces", "POST", json.dumps({"title": "from-console"}).encode(), session
    )
    assert status == 403 and "needs admin" in json.loads(body)["errors"][0]["message"]
    status, _, _ = _http(f"{base}/namespaces/{scoped.other_ns}", "DELETE", None, session)
    assert status == 403


# ---- the audit trail ---------------------------------------------------------------


def test_the_audit_log_names_token_ids_never_tokens(scoped: Scoped) -> None:
    with (
        Client(scoped.node.address, api_token=READER, timeout=10) as reader,
        pytest.raises(PermissionDeniedError),
    ):
        reader.namespaces.delete(scoped.other_ns)
    with Client(scoped.node.address, api_token=ADMIN, timeout=10) as admin:
        audited = admin.namespaces.create("audited")
        admin.namespaces.delete(audited.id)
    channel = grpc.insecure_channel(scoped.node.address)
    try:
        status = admin_pb2_grpc.AdminStub(channel).Status(
            admin_pb2.StatusRequest(), metadata=(("authorization", f"Bearer {ADMIN}"),), timeout=10
        )
        assert status.node_id
    finally:
        channel.close()

    def events() -> list[dict[str, Any]]:
        return [json.loads(line) for line in scoped.audit.read_text().splitlines()]

    def seen() -> bool:
        kinds = {(e["event"], e.get("namespace")) for e in events()}
        return {
            ("namespace.create", audited.id),
            ("namespace.delete", audited.id),
        } <= kinds and any(e["event"] == "admin.call" for e in events())

    poll(seen, timeout=10)
    recorded = events()
    refusals = [e for e in recorded if e["event"] == "refused"]
    assert any(
        e["token"] == _token_id(READER) and e["operation"] == "DeleteNamespace" for e in refusals
    )
    created = next(
        e for e in recorded if e["event"] == "namespace.create" and e["namespace"] == audited.id
    )
    assert created["token"] == _token_id(ADMIN) and created["outcome"] == "OK"
    assert created["title"] == "audited"
    admin_call = next(e for e in recorded if e["event"] == "admin.call")
    assert admin_call == {
        "time": admin_call["time"],
        "event": "admin.call",
        "token": _token_id(ADMIN),
        "method": "Status",
        "outcome": "OK",
    }
    text = scoped.audit.read_text()
    for secret in (ADMIN, READER, TEAM):
        assert secret not in text
    assert oct(scoped.audit.stat().st_mode & 0o777) == "0o600"


# ---- the Workers binding in real workerd ---------------------------------------------


def test_a_worker_with_a_read_only_token_reads_but_cannot_write(
    scoped: Scoped, tmp_path: Path
) -> None:
    install()  # fails clearly without node and npm
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "worker.log"
    command = [
        str(Path(sys.executable).with_name("rumor")), "worker", "dev", str(WORKER),
        "--kv", f"KV={scoped.team_ns}", "--port", str(port), "--endpoint", scoped.node.address,
    ]  # fmt: skip
    env = {**os.environ, "RUMOR_CACHE_DIR": str(REPO / ".rumor"), "RUMOR_API_TOKEN": READER}
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:

        def ready() -> bool:
            assert process.poll() is None, log.read_text(errors="replace")
            return "Ready on http://" in log.read_text(errors="replace")

        poll(ready, timeout=120, interval=0.1)

        def call(op: str, **fields: Any) -> Any:
            body = json.dumps({"op": op, **fields}).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body)
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())

        assert call("get", key="k") == {"ok": True, "result": "team value"}
        refused = call("put", key="k", value="from the worker")
        assert not refused["ok"]
        assert refused["error"].startswith("Error: KV PUT failed: 403 Authentication error")
        assert call("get", key="k")["result"] == "team value"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
