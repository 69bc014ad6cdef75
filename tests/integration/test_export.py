"""`rumor kv export` / `rumor kv import` and migration to and from Cloudflare Workers KV,
run as the installed `rumor` executable against real nodes.

A second Rumor node's Cloudflare-compatible HTTP API (with an API token) stands in for
Cloudflare. The namespace holds 50,000 keys: text (some non-ASCII, some holding a
literal U+FFFD), binary values, metadata and expirations. Two runs are killed part
way and resumed; every key must arrive intact either way. Each run prints its rate.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rumor.client import Client
from rumor.client.export import value_bytes
from tests.support.nodes import NodeProcess, poll

pytestmark = pytest.mark.slow

RUMOR = str(Path(sys.executable).with_name("rumor"))
KEYS = 50_000
TOKEN = "cloudflare-stand-in-token"
ACCOUNT = "0" * 32
RATE = re.compile(r"Success! (\w+) (\d+) keys in [\d.]+ s \(([\d,]+) keys/s\)")


def value_of(index: int) -> bytes:
    if index % 5 == 0:
        return b"\xff\xfe\x00" + index.to_bytes(4, "big")  # not UTF-8
    if index % 11 == 0:
        return f"replacement \ufffd {index}".encode()  # UTF-8 that holds U+FFFD
    return f"value {index} é".encode()


def expected_data(now: int) -> dict[str, dict[str, Any]]:
    data = {}
    for index in range(KEYS):
        entry: dict[str, Any] = {"value": value_of(index)}
        if index % 3 == 0:
            entry["metadata"] = {"index": index, "tags": ["a", "b"]}
        if index % 7 == 0:
            entry["expiration"] = now + 86_400 + index
        data[f"key/{index:06d}"] = entry
    return data


@dataclass
class Setup:
    source: NodeProcess
    cloud: NodeProcess
    namespace: str
    data: dict[str, dict[str, Any]]
    root: Path

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
            "CLOUDFLARE_API_TOKEN": TOKEN,
            "CLOUDFLARE_API_BASE_URL": f"http://{self.cloud.http}/client/v4",
        }


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("export")
    source = NodeProcess(root / "source", "--min-expiration-ttl", "1")
    cloud = NodeProcess(root / "cloud", "--http", "127.0.0.1:0", "--api-token", TOKEN)
    source.start()
    cloud.start()
    try:
        data = expected_data(int(time.time()))
        with Client(source.address) as client:
            namespace = client.namespaces.create("export-source").id
            items = [{"key": key, **entry_item(entry)} for key, entry in data.items()]
            for start in range(0, len(items), 10_000):
                client.namespace(namespace).bulk_put(items[start : start + 10_000])
        yield Setup(source, cloud, namespace, data, root)
    finally:
        source.stop()
        cloud.stop()


def entry_item(entry: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"value": base64.b64encode(entry["value"]).decode(), "base64": True}
    item.update({k: v for k, v in entry.items() if k in ("metadata", "expiration")})
    return item


def rumor(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """Run `rumor`; its closing line, after checking it succeeded."""
    result = subprocess.run(
        [RUMOR, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def rate(output: str) -> tuple[int, int]:
    """Keys written and keys/s from a run's closing line."""
    match = RATE.search(output)
    assert match, output
    print(output.strip())
    return int(match.group(2)), int(match.group(3).replace(",", ""))


def interrupted(
    args: list[str], progress: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> dict[str, Any]:
    """Start `rumor`, kill it once its progress file records some acknowledged work,
    and return what the file said."""
    process = subprocess.Popen(
        [RUMOR, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd
    )
    try:

        def started() -> dict[str, Any]:
            assert process.poll() is None, "the run finished before it could be interrupted"
            try:
                state = json.loads(progress.read_text())["state"]
            except (OSError, ValueError, KeyError):
                return {}
            return state if state.get("cursor") or state.get("offset") else {}

        state: dict[str, Any] = poll(started, timeout=120, interval=0.005)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.stderr is not None
        process.stderr.close()
    return state


def read_namespace(address: str, namespace: str, token: str | None = None) -> dict[str, Any]:
    """Every key of a namespace as {value, metadata?, expiration?} (bulk gets as text;
    a value that is not UTF-8 comes back with U+FFFD and is read again as bytes)."""
    found: dict[str, Any] = {}
    with Client(address, api_token=token) as client:
        ns = client.namespace(namespace)
        infos = list(ns.iter_keys())
        texts: dict[str, str] = {}
        for start in range(0, len(infos), 100):
            texts.update(ns.get([i.name for i in infos[start : start + 100]], type="text"))
        suspect = [name for name, text in texts.items() if "\ufffd" in text]
        with ThreadPoolExecutor(8) as pool:
            fetched = pool.map(lambda name: ns.get(name, type="bytes"), suspect)
            raw = dict(zip(suspect, fetched, strict=True))
        for info in infos:
            value = raw[info.name] if info.name in raw else texts[info.name].encode()
            entry: dict[str, Any] = {"value": value}
            if info.metadata is not None:
                entry["metadata"] = info.metadata
            if info.expiration is not None:
                entry["expiration"] = info.expiration
            found[info.name] = entry
    return found


def read_lines(path: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for line in path.read_bytes().splitlines():
        item = json.loads(line)
        entry = {"value": value_bytes(item)}
        entry.update({k: v for k, v in item.items() if k in ("metadata", "expiration")})
        assert item["key"] not in found, f"{item['key']} twice"
        found[item["key"]] = entry
    return found


def create(address: str, title: str, token: str | None = None) -> str:
    with Client(address, api_token=token) as client:
        return client.namespaces.create(title).id


@pytest.fixture(scope="module")
def exported(setup: Setup) -> Path:
    output = setup.root / "export.jsonl"
    written, per_second = rate(
        rumor("kv", "export", "--namespace-id", setup.namespace, "--output", str(output),
              "--endpoint", setup.source.address)
    )  # fmt: skip
    assert written == KEYS
    assert per_second > 0
    assert not output.with_name("export.jsonl.progress").exists()
    return output


def test_export_writes_every_key_in_wrangler_format(setup: Setup, exported: Path) -> None:
    assert read_lines(exported) == setup.data
    first = json.loads(exported.read_bytes().splitlines()[0])
    assert first == {
        "key": "key/000000",
        "value": base64.b64encode(value_of(0)).decode(),
        "base64": True,
        "metadata": {"index": 0, "tags": ["a", "b"]},
        "expiration": setup.data["key/000000"]["expiration"],
    }
    text = json.loads(exported.read_bytes().splitlines()[1])
    assert text == {"key": "key/000001", "value": "value 1 é"}


def test_an_interrupted_export_resumes_where_it_stopped(setup: Setup, exported: Path) -> None:
    output = setup.root / "resumed.jsonl"
    progress = output.with_name("resumed.jsonl.progress")
    args = ["kv", "export", "--namespace-id", setup.namespace, "--output", str(output),
            "--endpoint", setup.source.address]  # fmt: skip
    state = interrupted(args, progress)
    assert state["offset"] > 0
    written, _ = rate(rumor(*args))
    assert written < KEYS  # it did not start over
    assert output.read_bytes() == exported.read_bytes()


def test_an_interrupted_import_resumes_and_rewriting_is_harmless(
    setup: Setup, exported: Path
) -> None:
    target = create(setup.source.address, "import-target")
    args = ["kv", "import", str(exported), "--namespace-id", target,
            "--endpoint", setup.source.address]  # fmt: skip
    progress = exported.with_name("export.jsonl.progress")
    state = interrupted(args, progress)
    assert 0 < state["offset"] < exported.stat().st_size
    written, _ = rate(rumor(*args))
    assert 0 < written < KEYS
    assert not progress.exists()
    assert read_namespace(setup.source.address, target) == setup.data
    # A second full run writes the same items again and changes nothing.
    written, _ = rate(rumor(*args))
    assert written == KEYS
    assert read_namespace(setup.source.address, target) == setup.data


def test_migration_to_cloudflare_and_back(setup: Setup) -> None:
    cloud_ns = create(setup.cloud.address, "migrated", token=TOKEN)
    args = ["kv", "export", "--namespace-id", setup.namespace, "--to-cloudflare", cloud_ns,
            "--endpoint", setup.source.address]  # fmt: skip
    progress = setup.root / f"kv-export-{setup.namespace}-to-{cloud_ns}.progress"
    state = interrupted(args, progress, env=setup.env(), cwd=setup.root)
    assert state["cursor"]
    written, _ = rate(rumor(*args, env=setup.env(), cwd=setup.root))
    assert 0 < written < KEYS
    assert read_namespace(setup.cloud.address, cloud_ns, TOKEN) == setup.data

    back = create(setup.source.address, "from-cloudflare")
    written, _ = rate(
        rumor("kv", "import", "--from-cloudflare", cloud_ns, "--namespace-id", back,
              "--endpoint", setup.source.address, env=setup.env(), cwd=setup.root)
    )  # fmt: skip
    assert written == KEYS
    assert read_namespace(setup.source.address, back) == setup.data


def test_cloudflare_refusals_are_one_line(setup: Setup) -> None:
    env = {**setup.env(), "CLOUDFLARE_API_TOKEN": "wrong"}
    result = subprocess.run(
        [RUMOR, "kv", "import", "--from-cloudflare", "f" * 32, "--namespace-id",
         setup.namespace, "--endpoint", setup.source.address],
        capture_output=True, text=True, env=env, cwd=setup.root, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("✘ Cloudflare answered 403: Authentication error"), (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    env.pop("CLOUDFLARE_ACCOUNT_ID")
    result = subprocess.run(
        [RUMOR, "kv", "export", "--to-cloudflare", "f" * 32, "--namespace-id",
         setup.namespace, "--endpoint", setup.source.address],
        capture_output=True, text=True, env=env, cwd=setup.root, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Set CLOUDFLARE_ACCOUNT_ID" in result.stderr


def test_all_namespaces_travel_with_their_titles(setup: Setup) -> None:
    small = NodeProcess(setup.root / "small", "--min-expiration-ttl", "1").start()
    try:
        with Client(small.address) as client:
            for title in ("alpha", "beta"):
                ns = client.namespace(client.namespaces.create(title).id)
                ns.bulk_put([{"key": f"{title}-{i}", "value": str(i)} for i in range(1500)])
        output = setup.root / "all.jsonl"
        written, _ = rate(
            rumor("kv", "export", "--all", "--output", str(output), "--endpoint", small.address)
        )
        assert written == 3000
        headers = [json.loads(line) for line in output.read_bytes().splitlines()]
        titles = [h["namespace"]["title"] for h in headers if "namespace" in h]
        assert sorted(titles) == ["alpha", "beta"]
        # Into the stand-in's gRPC API: the namespaces are created by title.
        env = {**os.environ, "RUMOR_API_TOKEN": TOKEN}
        written, _ = rate(
            rumor("kv", "import", str(output), "--all", "--endpoint", setup.cloud.address, env=env)
        )
        assert written == 3000
        with Client(setup.cloud.address, api_token=TOKEN) as client:
            by_title = {i.title: i.id for i in client.namespaces.list()}
            for title in ("alpha", "beta"):
                ns = client.namespace(by_title[title])
                assert ns.get([f"{title}-0", f"{title}-1499"]) == {
                    f"{title}-0": "0",
                    f"{title}-1499": "1499",
                }
                assert len(list(ns.iter_keys())) == 1500
    finally:
        small.stop()
