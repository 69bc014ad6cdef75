"""The Cloudflare-compatible HTTP gateway, served in-process on real Operations."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from rumor.node.replication import Replica
from rumor.node.server.access import HttpAccess, titles_of
from rumor.node.server.auth import TokenChecker
from rumor.node.server.driver.clock import WallClock
from rumor.node.server.driver.group_commit import GroupCommit
from rumor.node.server.health import Health
from rumor.node.server.http.gateway import build_app, serve
from rumor.node.server.operations import Operations
from rumor.node.startup import new_node_id
from rumor.node.storage import RocksStore

ACCOUNT = "acc"
BASE = f"/client/v4/accounts/{ACCOUNT}/storage/kv/namespaces"


def _operations(data_dir: Path) -> tuple[Operations, RocksStore]:
    """Operations as node/app.py builds them, standalone (replication=None)."""
    clock = WallClock()
    store = RocksStore(data_dir)
    replica = Replica(store, new_node_id=new_node_id(), wall_ms=clock.wall_ms())
    # No engine here: the test is the driver a finished sync is reported to.
    commit = GroupCommit(replica, synced=replica.mark_durable, on_failure=lambda error: None)
    return Operations(replica, commit, clock, min_expiration_ttl=1), store


@dataclass
class Gateway:
    url: str
    session: aiohttp.ClientSession
    observed: list[tuple[str, str, int, float]] = field(default_factory=list)
    health: list[Health] = field(default_factory=lambda: [Health(ready=True)])

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.session.request(method, self.url + path, **kwargs) as response:
            return response.status, await response.json()

    async def namespace(self, title: str = "ns") -> str:
        status, body = await self.call("POST", BASE, json={"title": title})
        assert status == 200, body
        return str(body["result"]["id"])


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    operations, store = _operations(tmp_path / "data")
    observed: list[tuple[str, str, int, float]] = []
    health = [Health(ready=True)]
    app = build_app(
        operations,
        health=lambda: health[0],
        metrics_text=lambda: (b"rumor_up 1\n", "text/plain; version=0.0.4"),
        observe=lambda *args: observed.append(args),
    )
    runner, addr = await serve(app, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            yield Gateway(f"http://{addr}", session, observed, health)
    finally:
        await runner.cleanup()
        store.close()


def _error(body: Any) -> tuple[int, str]:
    assert body["success"] is False
    error = body["errors"][0]
    return error["code"], error["message"]


# ---- namespaces ---------------------------------------------------------


async def test_namespace_crud_and_paging(gw: Gateway) -> None:
    ids = [await gw.namespace(f"title-{i:02d}") for i in range(25)]
    status, body = await gw.call("GET", BASE)
    assert status == 200 and body["success"] is True
    assert body["result_info"] == {"page": 1, "per_page": 20, "count": 20, "total_count": 25}
    assert [ns["id"] for ns in body["result"]] == sorted(ids)[:20]
    _, body = await gw.call("GET", BASE, params={"page": "2"})
    assert len(body["result"]) == 5
    _, body = await gw.call("GET", BASE, params={"page": "3"})
    assert body["result"] == []
    _, body = await gw.call(
        "GET", BASE, params={"order": "title", "direction": "desc", "per_page": "3"}
    )
    assert [ns["title"] for ns in body["result"]] == ["title-24", "title-23", "title-22"]
    status, body = await gw.call("GET", BASE, params={"per_page": "1000"})  # what wrangler asks
    assert status == 200 and len(body["result"]) == 25
    assert body["result_info"]["per_page"] == 1000
    status, body = await gw.call("GET", BASE, params={"per_page": "1001"})
    assert status == 400 and _error(body) == (
        10001,
        "Invalid per_page of 1001. Please specify an integer from 1 to 1000.",
    )

    first = ids[0]
    status, body = await gw.call("GET", f"{BASE}/{first}")
    assert status == 200 and body["result"]["title"] == "title-00"
    status, body = await gw.call("PUT", f"{BASE}/{first}", json={"title": "renamed"})
    assert status == 200 and body["result"] == {
        "id": first,
        "title": "renamed",
        "supports_url_encoding": True,
    }
    status, body = await gw.call("POST", BASE, json={"title": "renamed"})
    # 400, not 409: wrangler and the Cloudflare SDKs retry a 409 three times.
    assert status == 400 and _error(body)[0] == 10014
    status, body = await gw.call("POST", BASE, json={"title": ""})
    assert status == 400 and _error(body) == (10001, "Namespace title cannot be empty.")
    status, body = await gw.call("DELETE", f"{BASE}/{first}")
    assert status == 200 and body["success"] is True
    status, body = await gw.call("GET", f"{BASE}/{first}")
    assert status == 404 and _error(body) == (10013, "namespace not found")
    status, body = await gw.call("GET", f"{BASE}/not-an-id/values/k")
    assert status == 404 and _error(body)[0] == 10013


# ---- values -------------------------------------------------------------


async def test_values_raw_put_get_delete(gw: Gateway) -> None:
    ns = await gw.namespace()
    url = f"{gw.url}{BASE}/{ns}/values/"
    async with gw.session.put(url + "k1", data=b"\x00\xffbytes") as response:
        assert response.status == 200
        assert (await response.json())["success"] is True
    async with gw.session.get(url + "k1") as response:
        assert response.status == 200
        assert await response.read() == b"\x00\xffbytes"
        assert "expiration" not in response.headers
    ahead = int(time.time()) + 3600
    async with gw.session.put(url + "k2", data=b"v", params={"expiration": str(ahead)}):
        pass
    async with gw.session.get(url + "k2") as response:
        assert response.headers["expiration"] == str(ahead)
    async with gw.session.put(url + "k3", data=b"", params={"expiration_ttl": "100"}):
        pass
    async with gw.session.get(url + "k3") as response:
        assert response.status == 200 and await response.read() == b""
        assert int(response.headers["expiration"]) >= int(time.time()) + 99

    status, body = await gw.call("DELETE", f"{BASE}/{ns}/values/k1")
    assert status == 200 and body["success"] is True
    status, body = await gw.call("GET", f"{BASE}/{ns}/values/k1")
    assert status == 404 and _error(body) == (10009, "key not found")
    status, body = await gw.call("DELETE", f"{BASE}/{ns}/values/never-there")
    assert status == 200 and body["success"] is True


async def test_expired_key_reads_as_missing(gw: Gateway) -> None:
    ns = await gw.namespace()
    status, _ = await gw.call(
        "PUT", f"{BASE}/{ns}/values/short", data=b"v", params={"expiration_ttl": "1"}
    )
    assert status == 200
    await asyncio.sleep(2.1)
    status, body = await gw.call("GET", f"{BASE}/{ns}/values/short")
    assert status == 404 and _error(body)[0] == 10009
    status, body = await gw.call("GET", f"{BASE}/{ns}/metadata/short")
    assert status == 404 and _error(body)[0] == 10009


async def test_percent_encoded_keys(gw: Gateway) -> None:
    ns = await gw.namespace()
    for encoded, key in [("a%2Fb", "a/b"), ("sp%20ace", "sp ace"), ("%C3%A9t%C3%A9", "été")]:
        url = f"{gw.url}{BASE}/{ns}/values/{encoded}"
        async with gw.session.put(URL(url, encoded=True), data=key.encode()):
            pass
        async with gw.session.get(URL(url, encoded=True)) as response:
            assert response.status == 200 and await response.read() == key.encode()
    _, body = await gw.call("GET", f"{BASE}/{ns}/keys")
    assert sorted(entry["name"] for entry in body["result"]) == ["a/b", "sp ace", "été"]
    url = f"{gw.url}{BASE}/{ns}/values/a/b"  # an unencoded slash is part of the key too
    async with gw.session.get(url) as response:
        assert await response.read() == b"a/b"


async def test_multipart_put_with_metadata(gw: Gateway) -> None:
    ns = await gw.namespace()
    form = aiohttp.FormData()
    form.add_field("value", b"file-bytes", filename="upload")
    form.add_field("metadata", json.dumps({"a": 1}), content_type="application/json")
    status, body = await gw.call("PUT", f"{BASE}/{ns}/values/m1", data=form)
    assert status == 200, body
    async with gw.session.get(f"{gw.url}{BASE}/{ns}/values/m1") as response:
        assert await response.read() == b"file-bytes"
    status, body = await gw.call("GET", f"{BASE}/{ns}/metadata/m1")
    assert status == 200 and body["result"] == {"a": 1}

    form = aiohttp.FormData()
    form.add_field("value", "plain field")
    form.add_field("metadata", "just text", content_type="text/plain")
    status, _ = await gw.call("PUT", f"{BASE}/{ns}/values/m2", data=form)
    assert status == 200
    status, body = await gw.call("GET", f"{BASE}/{ns}/metadata/m2")
    assert body["result"] == "just text"

    form = aiohttp.FormData()
    form.add_field("value", "v")
    form.add_field("metadata", "[1,2]", content_type="text/plain")
    await gw.call("PUT", f"{BASE}/{ns}/values/m3", data=form)
    _, body = await gw.call("GET", f"{BASE}/{ns}/metadata/m3")
    assert body["result"] == [1, 2]

    await gw.call("PUT", f"{BASE}/{ns}/values/none", data=b"v")
    status, body = await gw.call("GET", f"{BASE}/{ns}/metadata/none")
    assert status == 200 and body["result"] is None
    status, body = await gw.call("GET", f"{BASE}/{ns}/metadata/missing")
    assert status == 404 and _error(body) == (10009, "key not found")

    form = aiohttp.FormData()
    form.add_field("metadata", "{}", content_type="application/json")
    status, body = await gw.call("PUT", f"{BASE}/{ns}/values/novalue", data=form)
    assert status == 400 and _error(body)[0] == 10001


async def test_validation_errors(gw: Gateway) -> None:
    ns = await gw.namespace()
    values = f"{BASE}/{ns}/values/"
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        (values, {"data": b"v"}, 400, "Key name cannot be empty."),
        (values + "%2E", {"data": b"v"}, 400, '"." is not allowed as a key name.'),
        (
            values + "k" * 513,
            {"data": b"v"},
            414,
            "UTF-8 encoded length of 513 exceeds key length limit of 512.",
        ),
        (
            values + "k",
            {"data": b"x" * 26_214_401},
            413,
            "Value length of 26214401 exceeds limit of 26214400.",
        ),
        (
            values + "k",
            {"data": b"v", "params": {"expiration_ttl": "0"}},
            400,
            "Invalid expiration_ttl of 0. Please specify integer greater than 0.",
        ),
        (
            values + "k",
            {"data": b"v", "params": {"expiration": "1000"}},
            400,
            "Invalid expiration of 1000. Please specify integer greater than the current"
            " number of seconds since the UNIX epoch.",
        ),
        (values + "k", {"data": b"v", "params": {"expiration_ttl": "x"}}, 400, ""),
        # (``60.0`` reads as 60, as Workers KV's parseInt does: see test_workers_kv_semantics.)
        (
            values + "k",
            {"data": b"v", "params": {"expiration_ttl": str(2**63 - 1)}},
            400,
            f"Invalid expiration_ttl of {2**63 - 1}. Expiration TTL must be less than 2147483648.",
        ),
    ]
    for path, kwargs, want_status, message in cases:
        url = URL(gw.url + path, encoded=True)
        async with gw.session.put(url, **kwargs) as response:
            body = await response.json()
            assert response.status == want_status, (path[-20:], body)
            code, got = _error(body)
            assert code == 10001
            if message:
                assert got == message

    form = aiohttp.FormData()
    form.add_field("value", "v")
    form.add_field("metadata", json.dumps({"m": "x" * 1100}), content_type="application/json")
    status, body = await gw.call("PUT", values + "k", data=form)
    assert status == 413 and _error(body) == (
        10001,
        "Metadata length of 1108 exceeds limit of 1024.",
    )

    keys = f"{BASE}/{ns}/keys"
    async with gw.session.get(URL(gw.url + keys + "?prefix=%FF", encoded=True)) as response:
        assert response.status == 400  # as on gRPC, not a listing of U+FFFD
        assert _error(await response.json()) == (10001, "Prefix must be valid UTF-8.")
    await gw.call("PUT", f"{BASE}/{ns}/values/%C3%A9%20x1", data=b"v")
    async with gw.session.get(URL(gw.url + keys + "?prefix=%C3%A9+x", encoded=True)) as response:
        listed = await response.json()  # a UTF-8 prefix, "+" a space
        assert [k["name"] for k in listed["result"]] == ["é x1"]
    status, body = await gw.call("GET", keys, params={"limit": "9"})
    assert status == 400 and _error(body) == (
        10001,
        "Invalid key_count_limit of 9. Please specify an integer greater than or equal to 10.",
    )
    status, body = await gw.call("GET", keys, params={"limit": "1001"})
    assert status == 400 and _error(body) == (
        10001,
        "Invalid key_count_limit of 1001. Please specify an integer less than 1000.",
    )
    status, body = await gw.call("GET", keys, params={"cursor": "bogus"})
    assert status == 400 and _error(body)[1].startswith('Invalid cursor "bogus".')
    status, body = await gw.call("POST", f"{BASE}/{ns}/bulk/get", json={"keys": []})
    assert status == 400 and _error(body) == (10001, "You must request a minimum of 1 key")
    keys101 = [f"k{i}" for i in range(101)]
    status, body = await gw.call("POST", f"{BASE}/{ns}/bulk/get", json={"keys": keys101})
    assert status == 400 and _error(body) == (10001, "You can request a maximum of 100 keys")
    json_type = {"Content-Type": "application/json"}
    status, body = await gw.call("POST", BASE, data=b"{not json", headers=json_type)
    assert status == 400 and _error(body)[0] == 10001


# ---- keys and bulk -------------------------------------------------------


async def test_keys_listing_pages(gw: Gateway) -> None:
    ns = await gw.namespace()
    items: list[dict[str, Any]] = [{"key": f"p/{i:03d}", "value": str(i)} for i in range(25)]
    items.append({"key": "other", "value": "x", "metadata": {"m": True}, "expiration_ttl": 600})
    status, body = await gw.call("PUT", f"{BASE}/{ns}/bulk", json=items)
    assert status == 200 and body["result"] == {"successful_key_count": 26, "unsuccessful_keys": []}

    names: list[str] = []
    cursor = ""
    while True:
        params = {"prefix": "p/", "limit": "10"}
        if cursor:
            params["cursor"] = cursor
        _, body = await gw.call("GET", f"{BASE}/{ns}/keys", params=params)
        names += [entry["name"] for entry in body["result"]]
        assert body["result_info"]["count"] == len(body["result"])
        cursor = body["result_info"]["cursor"]
        if not cursor:
            break
    assert names == [f"p/{i:03d}" for i in range(25)]
    _, body = await gw.call("GET", f"{BASE}/{ns}/keys", params={"prefix": "oth"})
    [entry] = body["result"]
    assert entry["name"] == "other" and entry["metadata"] == {"m": True}
    assert entry["expiration"] >= int(time.time()) + 599
    assert body["result_info"] == {"count": 1, "cursor": ""}


async def test_bulk_put_get_delete(gw: Gateway) -> None:
    ns = await gw.namespace()
    items = [
        {"key": "t", "value": "text"},
        {"key": "j", "value": '{"x": [1, 2]}', "metadata": {"kind": "json"}},
        {"key": "b", "value": "aGVsbG8=", "base64": True},
    ]
    status, body = await gw.call("PUT", f"{BASE}/{ns}/bulk", json=items)
    assert status == 200, body
    async with gw.session.get(f"{gw.url}{BASE}/{ns}/values/b") as response:
        assert await response.read() == b"hello"

    get = f"{BASE}/{ns}/bulk/get"
    _, body = await gw.call("POST", get, json={"keys": ["t", "j", "missing"]})
    assert body["result"] == {"values": {"t": "text", "j": '{"x": [1, 2]}', "missing": None}}
    _, body = await gw.call(
        "POST", get, json={"keys": ["j", "missing"], "type": "json", "withMetadata": True}
    )
    assert body["result"] == {
        "values": {"j": {"value": {"x": [1, 2]}, "metadata": {"kind": "json"}}, "missing": None}
    }
    status, body = await gw.call("POST", get, json={"keys": ["t"], "type": "json"})
    assert status == 400 and _error(body) == (
        10001,
        "At least one of the requested keys corresponds to a non-json value",
    )
    status, body = await gw.call("POST", get, json={"keys": ["t"], "type": "arrayBuffer"})
    assert status == 400 and _error(body) == (
        10001,
        '"arrayBuffer" is not a valid type. Use "json" or "text"',
    )

    # One bad item fails the whole request and writes nothing.
    bad = [{"key": "new1", "value": "v"}, {"key": "", "value": "v"}]
    status, body = await gw.call("PUT", f"{BASE}/{ns}/bulk", json=bad)
    assert status == 400 and _error(body) == (10001, "Key name cannot be empty.")
    status, _ = await gw.call("GET", f"{BASE}/{ns}/metadata/new1")
    assert status == 404
    status, body = await gw.call("PUT", f"{BASE}/{ns}/bulk", json=[{"key": "k"}])
    assert status == 400 and _error(body)[0] == 10001

    status, body = await gw.call("POST", f"{BASE}/{ns}/bulk/delete", json=["t", "nope"])
    assert status == 200 and body["success"] is True
    status, body = await gw.call("DELETE", f"{BASE}/{ns}/bulk", json=["j"])
    assert status == 200 and body["success"] is True
    _, body = await gw.call("GET", f"{BASE}/{ns}/keys")
    assert [entry["name"] for entry in body["result"]] == ["b"]


# ---- hooks ----------------------------------------------------------------


async def test_healthz_metrics_observe(gw: Gateway) -> None:
    status, body = await gw.call("GET", "/healthz")
    release = {"version", "protocol", "oldest_protocol", "features"}  # every body has them
    assert status == 200 and body.keys() - release == {"status"} and body["status"] == "ok"
    gw.health[0] = Health(ready=False, not_ready="clock offset too large: -600000 ms")
    status, body = await gw.call("GET", "/healthz")
    assert status == 503
    assert {k: v for k, v in body.items() if k not in release} == {
        "status": "unavailable",
        "reason": "clock offset too large: -600000 ms",
    }
    gw.health[0] = Health(ready=True, writes_refused="disk full")
    status, body = await gw.call("GET", "/healthz")
    assert (status, body["status"], body["reads"], body["writes"]) == (
        503,
        "read_only",
        "ok",
        "refused",
    )
    assert body["reason"] == "disk full"
    async with gw.session.get(gw.url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        assert await response.read() == b"rumor_up 1\n"
    await gw.namespace()
    status, body = await gw.call("GET", "/client/v4/nothing-here")
    assert status == 404 and body["success"] is False
    seen = [(api, method, status) for api, method, status, _ in gw.observed]
    assert ("http", "healthz", 200) in seen
    assert ("http", "healthz", 503) in seen
    assert ("http", "namespaces.create", 200) in seen
    assert ("http", "unmatched", 404) in seen
    assert all(seconds >= 0 for *_, seconds in gw.observed)


async def test_authorize_and_no_metrics(tmp_path: Path) -> None:
    operations, store = _operations(tmp_path / "data")

    authorize = HttpAccess(TokenChecker(["good"]), titles_of(operations.get_namespace))
    runner, addr = await serve(build_app(operations, authorize=authorize), "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://{addr}{BASE}"
            async with session.get(url) as response:
                assert response.status == 401
                assert _error(await response.json()) == (10000, "Authentication error")
            async with session.get(url, headers={"Authorization": "Bearer bad"}) as response:
                assert response.status == 403
                assert _error(await response.json()) == (10000, "Authentication error")
            async with session.get(url, headers={"Authorization": "Bearer good"}) as response:
                assert response.status == 200
            async with session.get(f"http://{addr}/healthz") as response:
                assert response.status == 200
            async with session.get(f"http://{addr}/metrics") as response:
                assert response.status == 404
    finally:
        await runner.cleanup()
        store.close()


# ---- the official cloudflare SDK -------------------------------------------


@pytest.fixture
def threaded_gateway(tmp_path: Path) -> Iterator[str]:
    """The gateway on its own event loop in a thread, for the synchronous SDK."""
    loop = asyncio.new_event_loop()
    started: dict[str, Any] = {}
    ready = threading.Event()

    async def start() -> None:
        operations, store = _operations(tmp_path / "data")
        runner, addr = await serve(build_app(operations), "127.0.0.1", 0)
        started.update(runner=runner, addr=addr, store=store)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        yield str(started["addr"])
    finally:
        runner: web.AppRunner = started["runner"]
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        started["store"].close()
        loop.close()


def test_cloudflare_sdk(threaded_gateway: str) -> None:
    cloudflare = pytest.importorskip("cloudflare", reason="the cloudflare SDK is not installed")
    client = cloudflare.Cloudflare(
        api_token="t", base_url=f"http://{threaded_gateway}/client/v4", max_retries=0
    )
    kv = client.kv.namespaces
    created = kv.create(account_id=ACCOUNT, title="sdk")
    assert created is not None and created.title == "sdk"
    ns = created.id
    kv.create(account_id=ACCOUNT, title="sdk-2")
    titles = sorted(item.title for item in kv.list(account_id=ACCOUNT, per_page=1))
    assert titles == ["sdk", "sdk-2"]  # auto-paging stops at the first empty page

    kv.values.update(
        "a/b",
        account_id=ACCOUNT,
        namespace_id=ns,
        value=b"hello",
        metadata={"m": 1},
        expiration_ttl=600,
    )
    kv.values.update("plain", account_id=ACCOUNT, namespace_id=ns, value=b"p", metadata="txt")
    got = kv.values.get("a/b", account_id=ACCOUNT, namespace_id=ns)
    assert got.read() == b"hello"
    assert int(got.headers["expiration"]) >= int(time.time()) + 599
    assert kv.metadata.get("a/b", account_id=ACCOUNT, namespace_id=ns) == {"m": 1}
    assert kv.metadata.get("plain", account_id=ACCOUNT, namespace_id=ns) == "txt"

    bulk = kv.bulk_update(
        ns,
        account_id=ACCOUNT,
        body=[{"key": f"bulk{i:02d}", "value": f"v{i}"} for i in range(15)],
    )
    assert bulk is not None and bulk.successful_key_count == 15
    names = [key.name for key in kv.keys.list(ns, account_id=ACCOUNT, limit=10)]
    assert names == ["a/b", *[f"bulk{i:02d}" for i in range(15)], "plain"]
    values = kv.bulk_get(ns, account_id=ACCOUNT, keys=["bulk00", "nope"])
    assert values is not None
    assert values.to_dict()["values"] == {"bulk00": "v0", "nope": None}

    kv.bulk_delete(ns, account_id=ACCOUNT, body=[f"bulk{i:02d}" for i in range(15)])
    kv.values.delete("plain", account_id=ACCOUNT, namespace_id=ns)
    assert [key.name for key in kv.keys.list(ns, account_id=ACCOUNT)] == ["a/b"]
    with pytest.raises(cloudflare.NotFoundError):
        kv.values.get("plain", account_id=ACCOUNT, namespace_id=ns)
    with pytest.raises(cloudflare.BadRequestError) as raised:
        kv.values.update("k", account_id=ACCOUNT, namespace_id=ns, value=b"v", expiration_ttl=0)
    assert "Invalid expiration_ttl of 0." in str(raised.value)


def test_cloudflare_sdk_namespace_get_update_delete(threaded_gateway: str) -> None:
    cloudflare = pytest.importorskip("cloudflare", reason="the cloudflare SDK is not installed")
    client = cloudflare.Cloudflare(
        api_token="t", base_url=f"http://{threaded_gateway}/client/v4", max_retries=0
    )
    kv = client.kv.namespaces
    ns = kv.create(account_id=ACCOUNT, title="sdk-lifecycle").id
    assert kv.get(ns, account_id=ACCOUNT).title == "sdk-lifecycle"
    kv.update(ns, account_id=ACCOUNT, title="sdk-renamed")
    assert kv.get(ns, account_id=ACCOUNT).title == "sdk-renamed"
    kv.values.update("k", account_id=ACCOUNT, namespace_id=ns, value=b"v")
    kv.delete(ns, account_id=ACCOUNT)
    with pytest.raises(cloudflare.NotFoundError):
        kv.get(ns, account_id=ACCOUNT)
    assert all(item.id != ns for item in kv.list(account_id=ACCOUNT))
