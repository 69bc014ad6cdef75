"""Real wrangler (4.86) and the Cloudflare TypeScript SDK (7.3) against a 3-node cluster.

wrangler runs every ``kv`` command against node 1's HTTP API with
``CLOUDFLARE_API_BASE_URL``, with and without ``CLOUDFLARE_ACCOUNT_ID`` (without
it wrangler asks ``/memberships``), with metrics off, ``CI=true`` and a
temporary ``XDG_CONFIG_HOME`` so it never reaches outside this machine. What it
writes is read back from node 3. The TS SDK script (tests/js/ts_sdk.mjs) makes
every Workers KV call of the SDK.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rumor.client import Client
from tests.support.cluster import Cluster
from tests.support.js_clients import REPO, JsClients, install
from tests.support.nodes import poll

TOKEN = "wrangler-test-token"
READER = "wrangler-read-only-token"


@pytest.fixture(scope="module")
def js() -> JsClients:
    return install()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, js: JsClients) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    (root / "tokens").write_text(f"{READER} read\n")
    nodes = Cluster(
        root, 3, "--http", "127.0.0.1:0", "--api-token", TOKEN,
        "--api-token-file", str(root / "tokens"), "--min-expiration-ttl", "60",
    )  # fmt: skip
    try:
        yield nodes
    finally:
        nodes.stop()


class Wrangler:
    def __init__(
        self, js: JsClients, http: str, home: Path, account: str | None, token: str = TOKEN
    ) -> None:
        self.command = js.wrangler
        self.cwd = home
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "xdg"),
            "CI": "true",
            "WRANGLER_SEND_METRICS": "false",
            "CLOUDFLARE_API_BASE_URL": f"http://{http}/client/v4",
            "CLOUDFLARE_API_TOKEN": token,
            "NO_COLOR": "1",
        }
        if account is not None:
            self.env["CLOUDFLARE_ACCOUNT_ID"] = account

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.command, "kv", *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if ok:
            assert result.returncode == 0, f"wrangler kv {args}:\n{result.stdout}\n{result.stderr}"
        return result

    def json(self, *args: str) -> Any:
        """The JSON wrangler prints (it may be followed by a line about its logs)."""
        out = self.run(*args).stdout
        start = min(i for i in (out.find("["), out.find("{")) if i >= 0)
        return json.JSONDecoder().raw_decode(out[start:])[0]


@pytest.fixture(scope="module", params=["with-account-id", "without-account-id"])
def wrangler(
    request: pytest.FixtureRequest, js: JsClients, cluster: Cluster, tmp_path_factory: Any
) -> Wrangler:
    account = "f" * 32 if request.param == "with-account-id" else None
    home = tmp_path_factory.mktemp(request.param)
    (home / "xdg").mkdir()
    return Wrangler(js, cluster.nodes[0].http, home, account)


def _namespace_id(wrangler: Wrangler, title: str) -> str:
    listed = wrangler.json("namespace", "list")
    return str(next(item["id"] for item in listed if item["title"] == title))


def test_every_kv_command(wrangler: Wrangler, cluster: Cluster, tmp_path: Path) -> None:
    title = f"wr-{wrangler.cwd.name}"
    created = wrangler.run("namespace", "create", title)
    assert title in created.stdout
    duplicate = wrangler.run("namespace", "create", title, ok=False)
    assert duplicate.returncode != 0 and "already exists" in duplicate.stdout + duplicate.stderr
    ns = _namespace_id(wrangler, title)
    remote = ("--namespace-id", ns, "--remote")

    wrangler.run("key", "put", "greeting", "hello", *remote, "--metadata", '{"lang": "en"}',
                 "--ttl", "600")  # fmt: skip
    value_file = tmp_path / "blob.bin"
    value_file.write_bytes(b"\x00\x01binary")
    wrangler.run("key", "put", "blob", "--path", str(value_file), *remote)
    wrangler.run("key", "put", "dated", "x", "--expiration", str(2_000_000_000), *remote)
    assert wrangler.run("key", "get", "greeting", *remote, "--text").stdout.strip() == "hello"
    listed = wrangler.json("key", "list", *remote)
    assert [k["name"] for k in listed] == ["blob", "dated", "greeting"]
    assert listed[1]["expiration"] == 2_000_000_000
    assert listed[2]["metadata"] == {"lang": "en"}
    assert [k["name"] for k in wrangler.json("key", "list", *remote, "--prefix", "gr")] == [
        "greeting"
    ]
    wrangler.run("key", "delete", "dated", *remote)

    items = tmp_path / "items.json"
    items.write_text(json.dumps([
        {"key": "bulk:1", "value": "one"},
        {"key": "bulk:2", "value": "dHdv", "base64": True, "metadata": {"n": 2}},
    ]))  # fmt: skip
    wrangler.run("bulk", "put", str(items), *remote)
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(["bulk:1", "bulk:2", "missing"]))
    got = wrangler.json("bulk", "get", str(keys), *remote)
    assert got == {"bulk:1": "one", "bulk:2": "two", "missing": None}

    with Client(cluster.nodes[2].address, api_token=TOKEN) as kv:
        far = kv.namespace(ns)
        poll(lambda: far.get("bulk:2") == "two" and far.get("dated") is None, timeout=10)
        assert far.get("blob", type="bytes") == b"\x00\x01binary"
        assert far.get_with_metadata("greeting").metadata == {"lang": "en"}

    wrangler.run("bulk", "delete", str(keys), *remote, "--force")
    assert [k["name"] for k in wrangler.json("key", "list", *remote)] == ["blob", "greeting"]
    wrangler.run("namespace", "rename", title, "--new-name", title + "-renamed")
    assert _namespace_id(wrangler, title + "-renamed") == ns
    wrangler.run("namespace", "delete", "--namespace-id", ns)
    assert all(item["id"] != ns for item in wrangler.json("namespace", "list"))


def test_wrangler_shows_cloudflares_message_for_a_token_without_the_permission(
    js: JsClients, cluster: Cluster, tmp_path: Path
) -> None:
    (tmp_path / "xdg").mkdir()
    reader = Wrangler(js, cluster.nodes[0].http, tmp_path, "f" * 32, token=READER)
    with Client(cluster.nodes[0].address, api_token=TOKEN) as kv:
        ns = kv.namespaces.create("wr-read-only").id
        kv.namespace(ns).put("greeting", "hello")
    remote = ("--namespace-id", ns, "--remote")
    assert reader.run("key", "get", "greeting", *remote, "--text").stdout.strip() == "hello"
    refused = reader.run("key", "put", "greeting", "changed", *remote, ok=False)
    assert refused.returncode != 0
    assert "Authentication error [code: 10000]" in refused.stdout + refused.stderr
    deleted = reader.run("namespace", "delete", "--namespace-id", ns, ok=False)
    assert "Authentication error [code: 10000]" in deleted.stdout + deleted.stderr
    with Client(cluster.nodes[0].address, api_token=TOKEN) as kv:
        assert kv.namespace(ns).get("greeting") == "hello"


def test_the_typescript_sdk_makes_every_kv_call(js: JsClients, cluster: Cluster) -> None:
    # An ES module resolves `cloudflare` from its own folder: run it beside node_modules.
    script = js.root / "ts_sdk.mjs"
    shutil.copyfile(REPO / "tests" / "js" / "ts_sdk.mjs", script)
    result = subprocess.run(
        [js.node, str(script)],
        cwd=js.root,
        env={
            "PATH": os.environ.get("PATH", ""),
            "RUMOR_BASE_URL": f"http://{cluster.nodes[0].http}/client/v4",
            "RUMOR_API_TOKEN": TOKEN,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["created"] == {"title": "ts-sdk", "supports_url_encoding": True}
    assert out["duplicate"]["status"] == 400 and out["duplicate"]["errors"][0]["code"] == 10014
    assert out["listed"] and out["got"] == "ts-sdk" and out["renamed"] == "ts-sdk-2"
    assert out["value"] == "hello" and out["slashed"] == "slashed"
    assert out["metadata"] == {"lang": "en"}
    assert out["bad_ttl"] == {
        "status": 400,
        "errors": [
            {
                "code": 10001,
                "message": "Invalid expiration_ttl of 10. Expiration TTL must be at least 60.",
            }
        ],
    }
    assert out["missing"]["status"] == 404
    assert out["bulk_put"] == {"successful_key_count": 2, "unsuccessful_keys": []}
    assert out["bulk_get"] == {
        "values": {
            "bulk:1": {"value": "one", "metadata": None},
            "bulk:2": {"value": "two", "metadata": {"n": 2}},
            "missing": None,
        }
    }
    assert out["keys"] == ["bulk:1", "bulk:2"]
    assert out["bulk_delete"]["successful_key_count"] == 1
    assert out["after_delete"]["status"] == 404
    assert out["gone"]["status"] == 404 and out["gone"]["errors"][0]["code"] == 10013
