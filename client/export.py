"""Logical export and import: namespaces as JSON lines in wrangler's bulk format, and
migration to and from Cloudflare Workers KV.

One line per key, the item `wrangler kv bulk put` takes::

    {"key": "k", "value": "text", "metadata": {...}, "expiration": 1767225600}
    {"key": "blob", "value": "AAEC", "base64": true}

``value`` is the text when the bytes are UTF-8, else their base64 with ``"base64":
true``; ``metadata`` and ``expiration`` (absolute, epoch seconds) only when the key has
them. An export of every namespace puts ``{"namespace": {"id": ..., "title": ...}}``
before each namespace's keys.

Sources are read a page at a time (a listing page of 1,000 keys, or 1,000 lines of a
file) and their values fetched with bulk gets of 100 as text; a value that comes back
with U+FFFD in it may not be UTF-8 and is read again as bytes. Destinations are
written in bulk batches (1,000 items to Rumor, up to 10,000 to Cloudflare).

Resuming: a progress file (JSON, replaced atomically) records how far the
destination has acknowledged: a listing cursor (Rumor's and Cloudflare's are "start
after this key"), a byte offset in the input, or both. A run that stops for any
reason starts again from there; one that finishes deletes it. Re-writing a key with
the same value, metadata and expiration changes nothing a reader can see, so running
a transfer twice, or resuming past a batch that had in fact landed, is harmless.

An export is not a point-in-time snapshot: a key written while it runs may appear with
either value. Keys that expire within ``EXPIRY_MARGIN`` seconds are not written to a
destination (both Rumor and Cloudflare refuse expirations under a minute away) and are
counted as skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rumor.client.cloudflare_api import (
    MAX_BULK_GET,
    MAX_BULK_WRITE,
    MAX_BULK_WRITE_BYTES,
    CloudflareError,
    CloudflareKV,
)
from rumor.client.errors import NamespaceExistsError, RumorError
from rumor.client.models import KeyInfo
from rumor.client.sync import Client, KVNamespace

RUMOR_BATCH = 1000
EXPIRY_MARGIN = 60
FETCH_THREADS = 8
REPLACEMENT = "\ufffd"


class TransferError(ValueError):
    """A transfer cannot go on; the message says why and what to do."""


# ---- the line format ----------------------------------------------------------


def item(name: str, value: str | bytes, expiration: int | None, metadata: Any) -> dict[str, Any]:
    """The wrangler bulk item for one key."""
    entry: dict[str, Any] = {"key": name}
    if isinstance(value, bytes):
        try:
            entry["value"] = value.decode("utf-8")
        except UnicodeDecodeError:
            entry["value"] = base64.b64encode(value).decode("ascii")
            entry["base64"] = True
    else:
        entry["value"] = value
    if metadata is not None:
        entry["metadata"] = metadata
    if expiration:
        entry["expiration"] = int(expiration)
    return entry


def value_bytes(entry: dict[str, Any]) -> bytes:
    """The bytes an item stands for."""
    if entry.get("base64"):
        return base64.b64decode(entry["value"], validate=True)
    return str(entry["value"]).encode("utf-8")


def parse_line(line: bytes, number: int, source: str) -> dict[str, Any]:
    """One line: a bulk item or a namespace header; TransferError names the line."""
    try:
        parsed = json.loads(line)
    except ValueError as exc:
        raise TransferError(f"{source}:{number}: not JSON ({exc})") from None
    if isinstance(parsed, dict) and isinstance(parsed.get("namespace"), dict):
        header = parsed["namespace"]
        if isinstance(header.get("title"), str):
            return parsed
    if (
        not isinstance(parsed, dict)
        or not isinstance(parsed.get("key"), str)
        or not isinstance(parsed.get("value"), str)
        or not isinstance(parsed.get("base64", False), bool)
        or not isinstance(parsed.get("expiration", 0), int)
        or not isinstance(parsed.get("expiration_ttl", 0), int)
    ):
        raise TransferError(
            f'{source}:{number}: expected {{"key", "value", "base64"?, "metadata"?, '
            f'"expiration"?}} or {{"namespace": {{"id", "title"}}}}, got {line[:200]!r}'
        )
    if parsed.get("base64"):
        try:
            base64.b64decode(parsed["value"], validate=True)
        except (binascii.Error, ValueError):
            raise TransferError(f"{source}:{number}: base64 is true but the value is not") from None
    return parsed


def dump_line(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def live(items: Sequence[dict[str, Any]], now: float) -> tuple[list[dict[str, Any]], int]:
    """The items a destination accepts, and how many expire too soon to write."""
    limit = int(now) + EXPIRY_MARGIN
    kept = [i for i in items if not i.get("expiration") or i["expiration"] > limit]
    return kept, len(items) - len(kept)


# ---- resuming -----------------------------------------------------------------


class ProgressFile:
    """How far a transfer got: ``{"transfer": identity, "state": {...}}`` on disk.

    The state is kept only for the same identity (source, destination, prefix); any
    other transfer starts from the beginning."""

    def __init__(self, path: Path | None, identity: dict[str, Any]) -> None:
        self.path = path
        self.identity = identity

    def load(self) -> dict[str, Any] | None:
        if self.path is None or not self.path.exists():
            return None
        try:
            saved = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or saved.get("transfer") != self.identity:
            return None
        state = saved.get("state")
        return state if isinstance(state, dict) else None

    def save(self, state: dict[str, Any]) -> None:
        if self.path is None:
            return
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps({"transfer": self.identity, "state": state}))
        os.replace(temporary, self.path)

    def finish(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


@dataclass
class Tally:
    """What a transfer did, for its closing line and its progress bar."""

    written: int = 0
    skipped: int = 0
    bytes_read: int = 0
    on_change: Callable[[Tally], None] = field(default=lambda _tally: None, repr=False)

    def add(self, written: int = 0, skipped: int = 0, bytes_read: int = 0) -> None:
        self.written += written
        self.skipped += skipped
        self.bytes_read += bytes_read
        self.on_change(self)


# ---- reading a listing page by page --------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    """The items of one listing page and the cursor after it (None: the last page)."""

    items: list[dict[str, Any]]
    cursor: str | None


def fetch_values(
    infos: Sequence[KeyInfo],
    bulk_text: Callable[[list[str]], dict[str, str | None]],
    get_bytes: Callable[[str], bytes | None],
    pool: ThreadPoolExecutor,
) -> list[dict[str, Any]]:
    """The items for listed keys; keys gone since the listing are left out."""
    texts: dict[str, str | None] = {}
    names = [info.name for info in infos]
    for start in range(0, len(names), MAX_BULK_GET):
        chunk = names[start : start + MAX_BULK_GET]
        try:
            texts.update(bulk_text(chunk))
        except (RumorError, CloudflareError):
            # A bulk get is refused over 25 MiB in all: read these one by one.
            texts.update(dict.fromkeys(chunk, REPLACEMENT))
    # Text with U+FFFD may be bytes that are not UTF-8: read those raw.
    suspect = [name for name, text in texts.items() if text is not None and REPLACEMENT in text]
    raw = dict(zip(suspect, pool.map(get_bytes, suspect), strict=True))
    items = []
    for info in infos:
        value: str | bytes | None = raw[info.name] if info.name in raw else texts.get(info.name)
        if value is not None:
            items.append(item(info.name, value, info.expiration, info.metadata))
    return items


def rumor_pages(
    namespace: KVNamespace, prefix: str | None, cursor: str | None, pool: ThreadPoolExecutor
) -> Iterator[Page]:
    """A Rumor namespace's keys with their values, page by page from ``cursor``."""

    def bulk_text(names: list[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = namespace.get(names, type="text")
        return found

    def get_bytes(name: str) -> bytes | None:
        found: bytes | None = namespace.get(name, type="bytes")
        return found

    while True:
        page = namespace.list(prefix=prefix, cursor=cursor)
        cursor = None if page.list_complete else page.cursor
        yield Page(fetch_values(page.keys, bulk_text, get_bytes, pool), cursor)
        if cursor is None:
            return


def cloudflare_pages(
    api: CloudflareKV, prefix: str | None, cursor: str | None, pool: ThreadPoolExecutor
) -> Iterator[Page]:
    """A Cloudflare namespace's keys with their values, page by page from ``cursor``."""
    while True:
        keys, cursor = api.list_keys(prefix=prefix, cursor=cursor)
        infos = [
            KeyInfo(
                str(k["name"]),
                int(k["expiration"]) if k.get("expiration") else None,
                k.get("metadata"),
            )
            for k in keys
        ]
        yield Page(fetch_values(infos, api.bulk_get_text, api.get_bytes, pool), cursor)
        if cursor is None:
            return


# ---- transfers ------------------------------------------------------------------


def export_lines(
    client: Client,
    namespaces: Sequence[tuple[str, str]] | None,
    namespace_id: str | None,
    prefix: str | None,
    out: IO[bytes],
    progress: ProgressFile,
    tally: Tally,
) -> None:
    """Write a namespace (``namespace_id``) or several with headers (``namespaces`` of
    (id, title)) to ``out``, recording after each page how far ``out`` holds."""
    state = progress.load() or {}
    targets = [(namespace_id, None)] if namespaces is None else sorted(namespaces)
    with ThreadPoolExecutor(FETCH_THREADS) as pool:
        for target_id, title in targets:
            assert target_id is not None
            cursor: str | None = None
            if state:
                if target_id < state["namespace"]:
                    continue
                if target_id == state["namespace"]:
                    if state["cursor"] is None:
                        continue
                    cursor = state["cursor"]
            if title is not None and cursor is None:
                out.write(dump_line({"namespace": {"id": target_id, "title": title}}))
            for page in rumor_pages(client.namespace(target_id), prefix, cursor, pool):
                for entry in page.items:
                    out.write(dump_line(entry))
                out.flush()
                progress.save(
                    {"namespace": target_id, "cursor": page.cursor, "offset": out.tell()}
                    if out.seekable()
                    else {"namespace": target_id, "cursor": page.cursor}
                )
                tally.add(written=len(page.items))


def find_or_create(client: Client, title: str) -> str:
    """The namespace titled ``title``, created if there is none."""
    matches = sorted(info.id for info in client.namespaces.list() if info.title == title)
    if len(matches) > 1:
        raise TransferError(f'Several namespaces are titled "{title}": {", ".join(matches)}.')
    if matches:
        return matches[0]
    try:
        return client.namespaces.create(title).id
    except NamespaceExistsError:  # created meanwhile by someone else
        return find_or_create(client, title)


def import_lines(
    client: Client,
    source: IO[bytes],
    source_name: str,
    namespace_id: str | None,
    progress: ProgressFile,
    tally: Tally,
) -> None:
    """Write the lines of ``source`` into ``namespace_id`` or, when None, into the
    namespaces their headers name (found by title or created)."""
    state = progress.load()
    offset = 0
    current = namespace_id
    if state is not None and source.seekable():
        offset = int(state["offset"])
        current = state.get("namespace") or namespace_id
        source.seek(offset)
        tally.add(bytes_read=offset)
    batch: list[dict[str, Any]] = []
    line_offset = offset

    def flush() -> None:
        nonlocal batch
        if batch:
            if current is None:
                raise TransferError(
                    f"{source_name}: keys before any namespace header; give --namespace-id."
                )
            kept, skipped = live(batch, time.time())
            if kept:
                client.namespace(current).bulk_put(kept)
            tally.add(written=len(kept), skipped=skipped)
        batch = []
        progress.save({"offset": line_offset, "namespace": current})

    for number, line in enumerate(source, start=1):
        if line.strip():
            entry = parse_line(line, number, source_name)
            if "namespace" in entry:
                flush()
                if namespace_id is None:
                    current = find_or_create(client, entry["namespace"]["title"])
            else:
                batch.append(entry)
        line_offset += len(line)
        tally.add(bytes_read=len(line))
        if len(batch) >= RUMOR_BATCH:
            flush()
    flush()


def import_from_cloudflare(
    client: Client,
    api: CloudflareKV,
    namespace_id: str,
    prefix: str | None,
    progress: ProgressFile,
    tally: Tally,
) -> None:
    """Copy a Cloudflare namespace into a Rumor one, a listing page at a time."""
    state = progress.load()
    cursor = None if state is None else state.get("cursor")
    namespace = client.namespace(namespace_id)
    with ThreadPoolExecutor(FETCH_THREADS) as pool:
        for page in cloudflare_pages(api, prefix, cursor, pool):
            kept, skipped = live(page.items, time.time())
            for start in range(0, len(kept), RUMOR_BATCH):
                namespace.bulk_put(kept[start : start + RUMOR_BATCH])
            tally.add(written=len(kept), skipped=skipped)
            progress.save({"cursor": page.cursor})


def export_to_cloudflare(
    client: Client,
    api: CloudflareKV,
    namespace_id: str,
    prefix: str | None,
    progress: ProgressFile,
    tally: Tally,
) -> None:
    """Copy a Rumor namespace into a Cloudflare one, in bulk writes of up to 10,000."""
    state = progress.load()
    cursor = None if state is None else state.get("cursor")
    pending: list[dict[str, Any]] = []
    pending_bytes = 0
    pending_cursor = cursor

    def write() -> None:
        nonlocal pending, pending_bytes
        if pending:
            api.bulk_write(pending)
            tally.add(written=len(pending))
        progress.save({"cursor": pending_cursor})
        pending, pending_bytes = [], 0

    with ThreadPoolExecutor(FETCH_THREADS) as pool:
        for page in rumor_pages(client.namespace(namespace_id), prefix, cursor, pool):
            kept, skipped = live(page.items, time.time())
            tally.add(skipped=skipped)
            size = sum(len(dump_line(entry)) for entry in kept)
            if pending and (
                len(pending) + len(kept) > MAX_BULK_WRITE
                or pending_bytes + size > MAX_BULK_WRITE_BYTES
            ):
                write()
            pending.extend(kept)
            pending_bytes += size
            pending_cursor = page.cursor
        write()
