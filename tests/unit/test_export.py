"""The export/import line format, progress files and resuming, without a node."""

from __future__ import annotations

import contextlib
import io
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rumor.client.export import (
    ProgressFile,
    Tally,
    TransferError,
    dump_line,
    fetch_values,
    import_lines,
    item,
    live,
    parse_line,
    value_bytes,
)
from rumor.client.models import KeyInfo, NamespaceInfo
from rumor.client.transfer_cli import resumable_output


@given(st.binary(max_size=64), st.text(min_size=1, max_size=20))
def test_any_bytes_survive_a_line(value: bytes, key: str) -> None:
    entry = item(key, value, None, None)
    parsed = parse_line(dump_line(entry), 1, "test")
    assert value_bytes(parsed) == value
    assert parsed["key"] == key
    # UTF-8 stays readable text; anything else is base64.
    assert parsed.get("base64", False) == (not _is_utf8(value))


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_an_item_carries_metadata_and_expiration_only_when_present() -> None:
    assert item("k", "v", None, None) == {"key": "k", "value": "v"}
    assert item("k", "v", 1_900_000_000, {"a": 1}) == {
        "key": "k",
        "value": "v",
        "metadata": {"a": 1},
        "expiration": 1_900_000_000,
    }


def test_bad_lines_are_named_by_number() -> None:
    with pytest.raises(TransferError, match=r"in\.jsonl:7: not JSON"):
        parse_line(b"{nope", 7, "in.jsonl")
    with pytest.raises(TransferError, match=r"in\.jsonl:3: expected"):
        parse_line(b'{"key": 1, "value": "v"}', 3, "in.jsonl")
    with pytest.raises(TransferError, match="base64 is true but the value is not"):
        parse_line(b'{"key": "k", "value": "***", "base64": true}', 1, "in.jsonl")
    header = parse_line(b'{"namespace": {"id": "x", "title": "T"}}', 1, "in.jsonl")
    assert header["namespace"]["title"] == "T"


def test_keys_expiring_within_a_minute_are_skipped() -> None:
    items: list[dict[str, Any]] = [
        {"key": "never", "value": ""},
        {"key": "soon", "value": "", "expiration": 1_000_059},
        {"key": "later", "value": "", "expiration": 1_000_061},
    ]
    kept, skipped = live(items, now=1_000_000.5)
    assert [i["key"] for i in kept] == ["never", "later"]
    assert skipped == 1


def test_a_progress_file_belongs_to_one_transfer(tmp_path: Path) -> None:
    path = tmp_path / "p.progress"
    mine = ProgressFile(path, {"import": "a", "file": "f"})
    assert mine.load() is None
    mine.save({"offset": 10})
    assert mine.load() == {"offset": 10}
    assert ProgressFile(path, {"import": "b", "file": "f"}).load() is None
    path.write_text("{torn")
    assert mine.load() is None
    mine.finish()
    assert not path.exists()


def test_values_with_a_replacement_character_are_read_again_as_bytes() -> None:
    stored = {"text": b"plain", "binary": b"\xff\x00", "literal": "a \ufffd".encode()}
    raw_reads: list[str] = []

    def bulk_text(names: list[str]) -> dict[str, str | None]:
        return {n: stored[n].decode("utf-8", "replace") if n in stored else None for n in names}

    def get_bytes(name: str) -> bytes | None:
        raw_reads.append(name)
        return stored.get(name)

    infos = [KeyInfo("text"), KeyInfo("binary", 1_900_000_000), KeyInfo("gone"), KeyInfo("literal")]
    with ThreadPoolExecutor(2) as pool:
        items = fetch_values(infos, bulk_text, get_bytes, pool)
    assert [i["key"] for i in items] == ["text", "binary", "literal"]
    assert {i["key"]: value_bytes(i) for i in items} == {k: stored[k] for k in stored}
    assert sorted(raw_reads) == ["binary", "literal"]
    assert items[1]["expiration"] == 1_900_000_000


class Interrupted(Exception):
    pass


class FakeNamespace:
    def __init__(self, store: FakeClient, namespace_id: str) -> None:
        self.store = store
        self.id = namespace_id

    def bulk_put(self, items: list[dict[str, Any]]) -> int:
        if self.store.fail_after is not None:
            if self.store.fail_after == 0:
                raise Interrupted
            self.store.fail_after -= 1
        for entry in items:
            self.store.data.setdefault(self.id, {})[entry["key"]] = entry["value"]
        self.store.puts += len(items)
        return len(items)


class FakeNamespaces:
    def __init__(self, store: FakeClient) -> None:
        self.store = store

    def list(self) -> list[NamespaceInfo]:
        return [NamespaceInfo(i, t) for i, t in self.store.titles.items()]

    def create(self, title: str) -> NamespaceInfo:
        namespace_id = f"id-{len(self.store.titles)}"
        self.store.titles[namespace_id] = title
        return NamespaceInfo(namespace_id, title)


class FakeClient:
    """What import_lines uses of a Client: namespaces and bulk_put."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, str]] = {}
        self.titles: dict[str, str] = {}
        self.fail_after: int | None = None
        self.puts = 0
        self.namespaces = FakeNamespaces(self)

    def namespace(self, namespace_id: str) -> FakeNamespace:
        return FakeNamespace(self, namespace_id)


def lines(*namespaces: tuple[str, int]) -> bytes:
    out = b""
    for title, count in namespaces:
        out += dump_line({"namespace": {"id": "src-" + title, "title": title}})
        for index in range(count):
            out += dump_line({"key": f"{title}{index}", "value": str(index)})
    return out


BATCHES = [1000, 1000, 500, 1000, 200]  # a: 2,500 keys, then b's header flushes; b: 1,200


@given(st.integers(min_value=0, max_value=6))
def test_an_import_interrupted_at_any_batch_resumes_without_starting_over(
    failing_batch: int,
) -> None:
    source = lines(("a", 2500), ("b", 1200))
    client = FakeClient()
    with tempfile.TemporaryDirectory() as directory:
        progress = ProgressFile(Path(directory) / "p", {"import": "all"})
        client.fail_after = failing_batch
        with contextlib.suppress(Interrupted):
            import_lines(client, io.BytesIO(source), "in", None, progress, Tally())  # type: ignore[arg-type]
        client.fail_after = None
        before = client.puts
        import_lines(client, io.BytesIO(source), "in", None, progress, Tally())  # type: ignore[arg-type]
    by_title = {title: client.data.get(i, {}) for i, title in client.titles.items()}
    assert sorted(by_title) == ["a", "b"]
    assert by_title["a"] == {f"a{i}": str(i) for i in range(2500)}
    assert by_title["b"] == {f"b{i}": str(i) for i in range(1200)}
    # The second run writes exactly what the first had not had acknowledged.
    assert client.puts - before == 3700 - sum(BATCHES[:failing_batch])


def test_a_resumed_export_cuts_the_output_back_to_what_was_recorded(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    progress = ProgressFile(tmp_path / "out.progress", {"export": "a"})
    output.write_bytes(b"line 1\nline 2\npartial li")
    progress.save({"namespace": "a", "cursor": "c", "offset": 14})
    with resumable_output(str(output), progress) as out:
        out.write(b"line 3\n")
    assert output.read_bytes() == b"line 1\nline 2\nline 3\n"
    assert progress.load() is not None


def test_an_export_whose_output_is_gone_starts_over(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    progress = ProgressFile(tmp_path / "out.progress", {"export": "a"})
    progress.save({"namespace": "a", "cursor": "c", "offset": 14})
    with resumable_output(str(output), progress) as out:
        out.write(b"line 1\n")
    assert output.read_bytes() == b"line 1\n"
    assert progress.load() is None  # the export starts from the first key
