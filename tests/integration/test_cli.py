"""`rumor kv`: the wrangler-style command line against one real node.

Most commands run in-process through click's CliRunner on ``rumor.client.launcher.main``
(with ``--endpoint``); a few run the installed ``rumor`` executable with
``RUMOR_ENDPOINT`` to prove the entry point, the environment variable, raw bytes on
the real stdout and the one-line error contract (no traceback, non-zero exit).
"""

from __future__ import annotations

import base64
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from rumor.client.launcher import main
from tests.support.nodes import NodeProcess, create_namespace

RUMOR = Path(sys.executable).with_name("rumor")
PUT_SHAPE = '[{"key": "...", "value": "...", "expiration"?, "expiration_ttl"?, "metadata"?'
ALL_BYTES = bytes(range(256))


@dataclass(frozen=True)
class Namespace:
    id: str
    title: str

    @property
    def by_id(self) -> list[str]:
        return ["--namespace-id", self.id]

    @property
    def by_title(self) -> list[str]:
        return ["--namespace", self.title]


def unique_title(label: str = "cli") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def namespace(node: NodeProcess) -> Namespace:
    """A fresh namespace (created over gRPC) with a title no other test uses."""
    title = unique_title()
    return Namespace(create_namespace(node, title), title)


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


# ---- helpers ------------------------------------------------------------------


def kv(runner: CliRunner, node: NodeProcess, *args: str, input: str | None = None) -> Result:
    """Run ``rumor kv --endpoint NODE ARGS...`` in-process."""
    return runner.invoke(main, ["kv", "--endpoint", node.address, *args], input=input)


def describe(result: Result) -> str:
    return (
        f"exit {result.exit_code}, exception {result.exception!r}\n"
        f"stdout: {result.stdout!r}\nstderr: {result.stderr!r}"
    )


def ok(result: Result) -> Result:
    """The command succeeded."""
    assert result.exit_code == 0, describe(result)
    return result


def stdout_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def error_line(result: Result) -> str:
    """The command failed cleanly: exit 1, exactly one line on stderr, no traceback."""
    assert result.exit_code == 1, describe(result)
    assert isinstance(result.exception, SystemExit), describe(result)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, describe(result)
    return lines[0]


def listed(runner: CliRunner, node: NodeProcess, ns: Namespace, *args: str) -> list[Any]:
    keys = stdout_json(kv(runner, node, "key", "list", *ns.by_id, *args))
    assert isinstance(keys, list)
    return keys


def names(runner: CliRunner, node: NodeProcess, ns: Namespace, *args: str) -> list[str]:
    return [entry["name"] for entry in listed(runner, node, ns, *args)]


def get_bytes(runner: CliRunner, node: NodeProcess, ns: Namespace, key: str) -> bytes:
    return ok(kv(runner, node, "key", "get", key, *ns.by_id)).stdout_bytes


def namespaces(runner: CliRunner, node: NodeProcess) -> dict[str, str]:
    """id -> title of every namespace, from `namespace list`."""
    listing = stdout_json(kv(runner, node, "namespace", "list"))
    assert isinstance(listing, list)
    return {entry["id"]: entry["title"] for entry in listing}


def write_json(path: Path, data: Any) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def rumor(
    node: NodeProcess, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the real ``rumor kv ARGS...`` executable, finding the node through RUMOR_ENDPOINT."""
    assert RUMOR.exists(), f"no rumor executable next to {sys.executable}"
    env = {**os.environ, "RUMOR_ENDPOINT": node.address}
    return subprocess.run(
        [str(RUMOR), "kv", *args], env=env, capture_output=True, input=stdin, timeout=60
    )


def closed_port_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


def wrangler_items(count: int) -> list[dict[str, Any]]:
    """``count`` items whose byte order differs from the file order."""
    keys = [f"key-{i:05d}" for i in range(count - 3)] + ["Zebra", "éclair", "a b"]
    items = [{"key": key, "value": f"value of {key}"} for key in keys]
    random.Random(7).shuffle(items)
    return items


# ---- namespaces ---------------------------------------------------------------


def test_namespace_create_prints_json_with_id_and_title(
    runner: CliRunner, node: NodeProcess
) -> None:
    title = unique_title("create")
    created = stdout_json(kv(runner, node, "namespace", "create", title))
    assert set(created) == {"id", "title"}
    assert created["title"] == title
    assert len(created["id"]) == 32 and all(c in "0123456789abcdef" for c in created["id"])
    assert namespaces(runner, node)[created["id"]] == title


def test_namespace_list_is_a_json_array_of_every_namespace(
    runner: CliRunner, node: NodeProcess, namespace: Namespace
) -> None:
    listing = stdout_json(kv(runner, node, "namespace", "list"))
    assert isinstance(listing, list)
    assert {"id": namespace.id, "title": namespace.title} in listing
    assert all(set(entry) == {"id", "title"} for entry in listing)


def test_namespace_create_of_a_taken_title_is_one_line(
    runner: CliRunner, node: NodeProcess, namespace: Namespace
) -> None:
    line = error_line(kv(runner, node, "namespace", "create", namespace.title))
    assert f'"{namespace.title}" already exists' in line
    assert list(namespaces(runner, node).values()).count(namespace.title) == 1


@pytest.mark.parametrize("by", ["id", "title"])
def test_namespace_rename(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, by: str
) -> None:
    new_title = unique_title("renamed")
    selector = namespace.by_id if by == "id" else namespace.by_title
    ok(kv(runner, node, "namespace", "rename", *selector, new_title))
    assert namespaces(runner, node)[namespace.id] == new_title


@pytest.mark.parametrize("by", ["id", "title"])
def test_namespace_delete(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, by: str
) -> None:
    selector = namespace.by_id if by == "id" else namespace.by_title
    ok(kv(runner, node, "namespace", "delete", *selector))
    assert namespace.id not in namespaces(runner, node)


def test_unknown_namespace_title_is_a_one_line_error_naming_it(
    runner: CliRunner, node: NodeProcess
) -> None:
    missing = unique_title("missing")
    for args in (
        ["namespace", "delete", "--namespace", missing],
        ["key", "put", "k", "v", "--namespace", missing],
        ["key", "list", "--namespace", missing],
    ):
        line = error_line(kv(runner, node, *args))
        assert missing in line, args


def test_unknown_namespace_id_is_a_one_line_error(runner: CliRunner, node: NodeProcess) -> None:
    line = error_line(kv(runner, node, "key", "get", "k", "--namespace-id", "f" * 32))
    assert "namespace not found" in line


@pytest.mark.parametrize(
    "args",
    [
        ["namespace", "rename", "NEW"],
        ["namespace", "delete"],
        ["key", "put", "k", "v"],
        ["key", "get", "k"],
        ["key", "list"],
        ["key", "delete", "k"],
    ],
)
def test_namespace_must_be_given_exactly_once(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, args: list[str]
) -> None:
    neither = error_line(kv(runner, node, *args))
    assert "--namespace-id" in neither and "--namespace" in neither
    both = error_line(kv(runner, node, *args, *namespace.by_id, *namespace.by_title))
    assert "not both" in both
    assert namespaces(runner, node)[namespace.id] == namespace.title
    assert names(runner, node, namespace) == []


# ---- single keys ----------------------------------------------------------------


def test_key_put_and_get_a_value(
    runner: CliRunner, node: NodeProcess, namespace: Namespace
) -> None:
    ok(kv(runner, node, "key", "put", "greeting", "héllo wörld", *namespace.by_title))
    assert get_bytes(runner, node, namespace, "greeting") == "héllo wörld".encode()
    text = ok(kv(runner, node, "key", "get", "greeting", "--text", *namespace.by_id))
    assert text.stdout == "héllo wörld\n"


def test_key_put_of_an_empty_value(
    runner: CliRunner, node: NodeProcess, namespace: Namespace
) -> None:
    ok(kv(runner, node, "key", "put", "empty", "", *namespace.by_id))
    assert get_bytes(runner, node, namespace, "empty") == b""
    assert names(runner, node, namespace) == ["empty"]


def test_key_put_from_a_binary_file_reads_back_byte_exact(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, tmp_path: Path
) -> None:
    data = ALL_BYTES * 2048  # 512 KiB: every byte value, across several stream chunks
    source = tmp_path / "blob.bin"
    source.write_bytes(data)
    ok(kv(runner, node, "key", "put", "blob", "--path", str(source), *namespace.by_id))
    assert get_bytes(runner, node, namespace, "blob") == data


def test_key_put_with_ttl_expiration_and_metadata_shows_in_key_list(
    runner: CliRunner, node: NodeProcess, namespace: Namespace
) -> None:
    expiration = int(time.time()) + 7200
    before = int(time.time())
    ok(kv(runner, node, "key", "put", "ttl", "1", "--ttl", "3600", *namespace.by_id))
    after = int(time.time()) + 1
    ok(
        kv(
            runner,
            node,
            "key",
            "put",
            "exp",
            "2",
            "--expiration",
            str(expiration),
            *namespace.by_id,
        )
    )
    ok(kv(runner, node, "key", "put", "meta", "3", "--metadata", '{"a":1}', *namespace.by_id))
    ok(kv(runner, node, "key", "put", "plain", "4", *namespace.by_id))
    entries = {entry["name"]: entry for entry in listed(runner, node, namespace)}
    assert set(entries) == {"ttl", "exp", "meta", "plain"}
    assert before + 3600 <= entries["ttl"]["expiration"] <= after + 3600
    assert "metadata" not in entries["ttl"]
    assert entries["exp"] == {"name": "exp", "expiration": expiration}
    assert entries["meta"] == {"name": "meta", "metadata": {"a": 1}}
    assert entries["plain"] == {"name": "plain"}


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ("nope", "--metadata must be valid JSON. Received: nope"),
        ("[1]", "--metadata must be a JSON object. Received: [1]"),
        ('"text"', '--metadata must be a JSON object. Received: "text"'),
    ],
)
def test_key_put_rejects_bad_metadata(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, metadata: str, message: str
) -> None:
    line = error_line(
        kv(runner, node, "key", "put", "k", "v", "--metadata", metadata, *namespace.by_id)
    )
    assert line.endswith(message)
    assert names(runner, node, namespace) == []


def test_key_put_needs_exactly_one_of_value_and_path(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, tmp_path: Path
) -> None:
    source = tmp_path / "v.txt"
    source.write_text("from file")
    both = error_line(
        kv(runner, node, "key", "put", "k", "v", "--path", str(source), *namespace.by_id)
    )
    assert "not both" in both
    neither = error_line(kv(runner, node, "key", "put", "k", *namespace.by_id))
    assert "VALUE" in neither and "--path" in neither
    assert names(runner, node, namespace) == []


def test_key_put_of_a_missing_file_is_one_line(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, tmp_path: Path
) -> None:
    missing = tmp_path / "absent.bin"
    line = error_line(kv(runner, node, "key", "put", "k", "--path", str(missing), *namespace.by_id))
    assert "absent.bin" in line
    assert names(runner, node, namespace) == []


def test_key_get_of_a_missing_key_fails(
    runner: CliRunner, node: NodeProcess, namespace: Namespace
) -> None:
    result = kv(runner, node, "key", "get", "nothing-here", *namespace.by_id)
    assert "Value not found" in error_line(result)
    assert result.stdout == ""
    text = kv(runner, node, "key", "get", "nothing-here", "--text", *namespace.by_id)
    assert "Value not found" in error_line(text)


def test_key_delete(runner: CliRunner, node: NodeProcess, namespace: Namespace) -> None:
    ok(kv(runner, node, "key", "put", "doomed", "x", *namespace.by_id))
    ok(kv(runner, node, "key", "put", "kept", "y", *namespace.by_id))
    ok(kv(runner, node, "key", "delete", "doomed", *namespace.by_title))
    assert names(runner, node, namespace) == ["kept"]
    assert "Value not found" in error_line(
        kv(runner, node, "key", "get", "doomed", *namespace.by_id)
    )
    ok(kv(runner, node, "key", "delete", "never-existed", *namespace.by_id))


@pytest.mark.parametrize("key", ["[/x]", "a[red]b"])
def test_key_names_with_brackets_are_printed_literally(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, key: str
) -> None:
    """Brackets in a key are not console markup: no crash, nothing swallowed."""
    put = ok(kv(runner, node, "key", "put", key, "v", *namespace.by_id))
    assert put.stderr == f'Wrote key "{key}"\n'
    assert get_bytes(runner, node, namespace, key) == b"v"
    deleted = ok(kv(runner, node, "key", "delete", key, *namespace.by_id))
    assert deleted.stderr == f'Deleted key "{key}"\n'


def test_namespace_titles_with_brackets_are_printed_literally(
    runner: CliRunner, node: NodeProcess
) -> None:
    title = unique_title("[/t]")
    created = ok(kv(runner, node, "namespace", "create", title))
    assert f'Created namespace "{title}"' in created.stderr
    assert json.loads(created.stdout)["title"] == title


# ---- listing ----------------------------------------------------------------------


def test_key_list_pages_through_2500_keys_in_byte_order(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, tmp_path: Path
) -> None:
    items = wrangler_items(2500)
    upload = ok(
        kv(runner, node, "bulk", "put", write_json(tmp_path / "k.json", items), *namespace.by_id)
    )
    assert upload.stderr.strip().splitlines()[-1] == "Success! Uploaded 2500 key-value pairs."
    expected = sorted((item["key"] for item in items), key=lambda key: key.encode())
    listing = listed(runner, node, namespace)
    assert [entry["name"] for entry in listing] == expected
    assert all(entry == {"name": entry["name"]} for entry in listing)
    prefixed = names(runner, node, namespace, "--prefix", "key-012")
    assert prefixed == [f"key-012{i:02d}" for i in range(100)]
    assert names(runner, node, namespace, "--prefix", "é") == ["éclair"]
    assert names(runner, node, namespace, "--prefix", "none-") == []


# ---- bulk put ---------------------------------------------------------------------


def test_bulk_put_writes_values_expirations_metadata_and_base64(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, tmp_path: Path
) -> None:
    expiration = int(time.time()) + 7200
    items = [
        {"key": "text", "value": "plain text"},
        {"key": "bin", "value": base64.b64encode(ALL_BYTES).decode(), "base64": True},
        {"key": "literal", "value": "AAEC", "base64": False},
        {"key": "exp", "value": "e", "expiration": expiration},
        {"key": "ttl", "value": "t", "expiration_ttl": 3600},
        {"key": "meta", "value": "m", "metadata": {"owner": "ada", "n": [1, 2]}},
    ]
    path = write_json(tmp_path / "items.json", items)
    result = ok(kv(runner, node, "bulk", "put", path, *namespace.by_title))
    assert result.stderr.strip().splitlines()[-1] == "Success! Uploaded 6 key-value pairs."
    assert get_bytes(runner, node, namespace, "text") == b"plain text"
    assert get_bytes(runner, node, namespace, "bin") == ALL_BYTES
    assert get_bytes(runner, node, namespace, "literal") == b"AAEC"
    entries = {entry["name"]: entry for entry in listed(runner, node, namespace)}
    assert entries["exp"]["expiration"] == expiration
    assert abs(entries["ttl"]["expiration"] - (time.time() + 3600)) < 30
    assert entries["meta"]["metadata"] == {"owner": "ada", "n": [1, 2]}
    assert entries["text"] == {"name": "text"}


def test_bulk_put_warns_about_extra_properties_but_writes(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, tmp_path: Path
) -> None:
    items = [{"key": "a", "value": "1", "colour": "red"}, {"key": "b", "value": "2"}]
    result = ok(
        kv(runner, node, "bulk", "put", write_json(tmp_path / "x.json", items), *namespace.by_id)
    )
    assert "Unexpected key-value properties" in result.stderr
    assert "colour" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "Success! Uploaded 2 key-value pairs."
    assert get_bytes(runner, node, namespace, "a") == b"1"
    assert get_bytes(runner, node, namespace, "b") == b"2"


GOOD = {"key": "good", "value": "written?"}


@pytest.mark.parametrize(
    "bad",
    [
        {"key": "no-value"},
        {"value": "no key"},
        {"key": "number", "value": 1},
        {"key": "null", "value": None},
        {"key": 7, "value": "key not a string"},
        {"key": "exp", "value": "v", "expiration": "soon"},
        "just a string",
        ["a", "b"],
        42,
    ],
    ids=lambda bad: json.dumps(bad)[:30],
)
def test_bulk_put_malformed_item_writes_nothing(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, tmp_path: Path, bad: Any
) -> None:
    path = write_json(tmp_path / "bad.json", [GOOD, bad])
    line = error_line(kv(runner, node, "bulk", "put", path, *namespace.by_id))
    assert "Item 1" in line
    assert PUT_SHAPE in line
    assert "Nothing was written." in line
    assert names(runner, node, namespace) == []


def test_bulk_put_invalid_base64_writes_nothing(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, tmp_path: Path
) -> None:
    items = [GOOD, {"key": "b64", "value": "not base64!!", "base64": True}]
    line = error_line(
        kv(runner, node, "bulk", "put", write_json(tmp_path / "b.json", items), *namespace.by_id)
    )
    assert "Item 1" in line and "base64" in line
    assert "Nothing was written." in line
    assert names(runner, node, namespace) == []


@pytest.mark.parametrize("data", [{"key": "a", "value": "1"}, "text", None])
def test_bulk_put_of_a_non_array_writes_nothing(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, tmp_path: Path, data: Any
) -> None:
    line = error_line(
        kv(runner, node, "bulk", "put", write_json(tmp_path / "o.json", data), *namespace.by_id)
    )
    assert "expected an array" in line
    assert PUT_SHAPE in line
    assert names(runner, node, namespace) == []


def test_bulk_put_of_a_file_that_is_not_json_or_missing(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('[{"key": "a", "value": "1"},')
    line = error_line(kv(runner, node, "bulk", "put", str(broken), *namespace.by_id))
    assert str(broken) in line and "not valid JSON" in line
    missing = tmp_path / "missing.json"
    line = error_line(kv(runner, node, "bulk", "put", str(missing), *namespace.by_id))
    assert str(missing) in line and "Cannot read" in line
    assert names(runner, node, namespace) == []


def test_bulk_put_item_rejected_by_the_node_is_one_line(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, tmp_path: Path
) -> None:
    items = [GOOD, {"key": "", "value": "empty key"}]
    line = error_line(
        kv(runner, node, "bulk", "put", write_json(tmp_path / "e.json", items), *namespace.by_id)
    )
    assert "Key name cannot be empty." in line
    assert names(runner, node, namespace) == []


# ---- bulk delete and bulk get -------------------------------------------------------


def upload(
    runner: CliRunner, node: NodeProcess, ns: Namespace, tmp_path: Path, keys: list[str]
) -> None:
    items = [{"key": key, "value": f"v:{key}"} for key in keys]
    ok(kv(runner, node, "bulk", "put", write_json(tmp_path / "upload.json", items), *ns.by_id))


def test_bulk_delete_of_strings_and_name_objects_with_force(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, tmp_path: Path
) -> None:
    keys = [f"k{i:04d}" for i in range(2500)]
    upload(runner, node, namespace, tmp_path, keys)
    as_strings = keys[:1500]
    as_objects = [{"name": key} for key in keys[1500:2400]]
    first = ok(
        kv(
            runner,
            node,
            "bulk",
            "delete",
            write_json(tmp_path / "d1.json", as_strings),
            "--force",
            *namespace.by_id,
        )
    )
    assert first.stderr.strip().splitlines()[-1] == "Success! Deleted 1500 keys."
    second = ok(
        kv(
            runner,
            node,
            "bulk",
            "delete",
            write_json(tmp_path / "d2.json", as_objects),
            "-f",
            *namespace.by_title,
        )
    )
    assert second.stderr.strip().splitlines()[-1] == "Success! Deleted 900 keys."
    assert names(runner, node, namespace) == keys[2400:]


def test_bulk_delete_asks_for_confirmation(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, tmp_path: Path
) -> None:
    upload(runner, node, namespace, tmp_path, ["a", "b", "c"])
    path = write_json(tmp_path / "d.json", ["a", {"name": "b"}])
    declined = ok(kv(runner, node, "bulk", "delete", path, *namespace.by_id, input="n\n"))
    assert "Delete 2 keys" in declined.stderr
    assert declined.stdout == ""
    assert names(runner, node, namespace) == ["a", "b", "c"]
    accepted = ok(kv(runner, node, "bulk", "delete", path, *namespace.by_id, input="y\n"))
    assert "Delete 2 keys" in accepted.stderr
    assert names(runner, node, namespace) == ["c"]


@pytest.mark.parametrize("bad", [5, {"key": "a"}, {"name": 3}, None])
def test_bulk_delete_malformed_item_deletes_nothing(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, tmp_path: Path, bad: Any
) -> None:
    upload(runner, node, namespace, tmp_path, ["a", "b"])
    path = write_json(tmp_path / "d.json", ["a", bad])
    line = error_line(kv(runner, node, "bulk", "delete", path, "--force", *namespace.by_id))
    assert "Item 1" in line and "Nothing was deleted." in line
    assert names(runner, node, namespace) == ["a", "b"]
    not_array = write_json(tmp_path / "n.json", {"name": "a"})
    assert "expected an array" in error_line(
        kv(runner, node, "bulk", "delete", not_array, "--force", *namespace.by_id)
    )
    assert names(runner, node, namespace) == ["a", "b"]


def test_bulk_get_prints_key_to_value_with_null_for_missing(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, tmp_path: Path
) -> None:
    keys = [f"g{i:03d}" for i in range(150)]
    upload(runner, node, namespace, tmp_path, keys)
    wanted: list[Any] = [*keys[:140], {"name": "g145"}, "absent", {"name": "also-absent"}]
    result = stdout_json(
        kv(runner, node, "bulk", "get", write_json(tmp_path / "g.json", wanted), *namespace.by_id)
    )
    expected: dict[str, Any] = {key: f"v:{key}" for key in [*keys[:140], "g145"]}
    expected |= {"absent": None, "also-absent": None}
    assert result == expected


# ---- node and connection errors -----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["key", "put", "", "x"], "Key name cannot be empty."),
        (["key", "put", "..", "x"], '".." is not allowed as a key name.'),
        (
            ["key", "put", "k" * 513, "x"],
            "UTF-8 encoded length of 513 exceeds key length limit of 512.",
        ),
        (
            ["key", "put", "k", "x", "--ttl", "0"],
            "Invalid expiration_ttl of 0. Please specify integer greater than 0.",
        ),
        (["key", "get", ""], "Key name cannot be empty."),
    ],
)
def test_node_errors_are_one_line(
    runner: CliRunner, node: NodeProcess, namespace: Namespace, args: list[str], message: str
) -> None:
    line = error_line(kv(runner, node, *args, *namespace.by_id))
    assert line.endswith(message)
    assert names(runner, node, namespace) == []


def test_unreachable_endpoint_is_one_line_naming_it(runner: CliRunner) -> None:
    address = closed_port_address()
    result = runner.invoke(main, ["kv", "--endpoint", address, "namespace", "list"])
    line = error_line(result)
    assert address in line
    assert result.stdout == ""


# ---- the real executable -------------------------------------------------------------


def test_executable_uses_rumor_endpoint_and_writes_raw_bytes(
    node: NodeProcess, namespace: Namespace, tmp_path: Path
) -> None:
    listing = rumor(node, "namespace", "list")
    assert listing.returncode == 0, listing.stderr
    assert {"id": namespace.id, "title": namespace.title} in json.loads(listing.stdout)
    source = tmp_path / "all.bin"
    source.write_bytes(ALL_BYTES)
    put = rumor(node, "key", "put", "raw", "--path", str(source), *namespace.by_title)
    assert put.returncode == 0, put.stderr
    got = rumor(node, "key", "get", "raw", *namespace.by_id)
    assert got.returncode == 0, got.stderr
    assert got.stdout == ALL_BYTES


def test_executable_error_is_one_line_on_stderr(node: NodeProcess, namespace: Namespace) -> None:
    missing = rumor(node, "key", "get", "nope", *namespace.by_id)
    assert missing.returncode == 1
    assert missing.stdout == b""
    lines = missing.stderr.decode().splitlines()
    assert len(lines) == 1 and "Value not found" in lines[0]
    assert b"Traceback" not in missing.stderr
    empty = rumor(node, "key", "put", "", "x", *namespace.by_id)
    assert empty.returncode == 1
    assert empty.stderr.decode().splitlines() == [empty.stderr.decode().strip()]
    assert "Key name cannot be empty." in empty.stderr.decode()


def test_executable_unreachable_endpoint_is_one_line() -> None:
    address = closed_port_address()
    env = {**os.environ, "RUMOR_ENDPOINT": address}
    result = subprocess.run(
        [str(RUMOR), "kv", "namespace", "list"], env=env, capture_output=True, timeout=60
    )
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and address in lines[0]
    assert b"Traceback" not in result.stderr
