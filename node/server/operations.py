"""The node's operations, shared by every API (gRPC now, the HTTP gateway later).

Each operation validates its input with ``core.validation`` (the only place
that words an error), checks the namespace, lets the replica write, and waits
for durability before it returns. Nothing here knows about gRPC or HTTP: the
services translate their messages into these calls and map the errors of
``core.errors`` onto their status codes.
"""

from __future__ import annotations

import asyncio
import gc
import operator
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

from rumor.node.core import paging, validation
from rumor.node.core.errors import (
    NamespaceExists,
    NamespaceNotFound,
)
from rumor.node.core.namespaces import RESERVED_NAMESPACE, cached_id_bytes, id_bytes
from rumor.node.core.record import RecordHeader
from rumor.node.replication import Applied, Replica
from rumor.node.replication.replica import reads
from rumor.node.replication.replica.replica import Write
from rumor.node.server.driver.clock import WallClock
from rumor.node.server.driver.group_commit import GroupCommit
from rumor.node.server.gathered_writes import GatheredWrites
from rumor.node.server.replication_hooks import ReplicationHooks, Standalone
from rumor.node.server.sessions import Sessions

# Headers one slice of a list reads before yielding to the loop (~2 ms): a page over many
# tombstones takes several slices instead of one long stall.
LIST_SCAN_SLICE = 2000


@dataclass(frozen=True, slots=True)
class NamespaceInfo:
    id: str
    title: str


class PutItem(NamedTuple):
    """One key of a put or a bulk put, as received (not validated yet)."""

    key: bytes
    value: bytes
    expiration: int | None = None
    expiration_ttl: int | None = None
    metadata: bytes | None = None  # JSON text


@dataclass(frozen=True, slots=True)
class Found:
    header: RecordHeader
    value: bytes


class BulkWritten(NamedTuple):
    """What a bulk write did: how many keys it took, and the last seq it wrote (0: none)."""

    key_count: int
    seq: int


@dataclass(frozen=True, slots=True)
class KeyListing:
    keys: list[tuple[bytes, RecordHeader]]
    complete: bool
    cursor: bytes  # empty when complete


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: a bulk write allocates ~10 objects per
    key and makes no cycles, and collections triggered by them walked everything
    the node holds (about 15% of a 10,000-key BulkPut's CPU, docs/BENCHMARKS.md)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _last_of_each_key(writes: list[Write]) -> list[Write]:
    """Each key's last write, in the order of those last writes."""
    if len(set(map(_key_of, writes))) == len(writes):
        return writes
    last: dict[bytes, Write] = {}
    for write in writes:
        last.pop(write.key, None)
        last[write.key] = write
    return list(last.values())


_key_of = operator.itemgetter(1)  # Write.key


class Operations:
    def __init__(
        self,
        replica: Replica,
        commit: GroupCommit,
        clock: WallClock,
        *,
        min_expiration_ttl: int = validation.DEFAULT_MIN_EXPIRATION_TTL,
        replication: ReplicationHooks | None = None,
    ) -> None:
        self.replica = replica
        self.commit = commit
        self.clock = clock
        self.min_expiration_ttl = min_expiration_ttl
        self.replication: ReplicationHooks = replication or Standalone(replica, clock)
        self.sessions = Sessions(replica, self.replication)
        self._gathered = GatheredWrites(self._propose_checked)

    # ---- namespaces -----------------------------------------------------

    async def create_namespace(self, title: str) -> NamespaceInfo:
        title = validation.title(title)
        self._check_title_free(title)
        self.replication.check_clock()
        namespace_id = os.urandom(16).hex()
        applied = self.replication.propose(
            [Write(RESERVED_NAMESPACE, namespace_id.encode(), title.encode())]
        )[0]
        await self.commit.durable(applied.ticket)
        return NamespaceInfo(namespace_id, title)

    def list_namespaces(self) -> list[NamespaceInfo]:
        return list(self.namespaces_after(None))

    def namespaces_after(self, after: bytes | None) -> Iterator[NamespaceInfo]:
        """Live namespaces in id order, after the id ``after`` (a cursor's) when given."""
        for key, header, title in self.replica.namespaces(after):
            if not header.tombstone:
                yield NamespaceInfo(key.decode(), title.decode())

    def namespace_page(
        self, limit: int, cursor: bytes, visible: Callable[[NamespaceInfo], bool]
    ) -> tuple[list[NamespaceInfo], bytes]:
        """Up to ``limit`` (0: every one) namespaces ``visible`` lets through, in id
        order after ``cursor``, and the cursor of the next page (empty: none)."""
        size = paging.namespace_list_limit(limit)
        page: list[NamespaceInfo] = []
        for info in self.namespaces_after(paging.cursor(cursor)):
            if not visible(info):
                continue
            if len(page) == size:
                return page, paging.encode_cursor(page[-1].id.encode())
            page.append(info)
        return page, b""

    def get_namespace(self, namespace_id: str) -> NamespaceInfo:
        raw = self._namespace(namespace_id)
        title = self.replica.value(RESERVED_NAMESPACE, raw.hex().encode()) or b""
        return NamespaceInfo(namespace_id, title.decode())

    async def rename_namespace(self, namespace_id: str, title: str) -> NamespaceInfo:
        self._namespace(namespace_id)
        title = validation.title(title)
        self._check_title_free(title, except_id=namespace_id)
        self.replication.check_clock()
        applied = self.replication.propose(
            [Write(RESERVED_NAMESPACE, namespace_id.encode(), title.encode())]
        )[0]
        await self.commit.durable(applied.ticket)
        return NamespaceInfo(namespace_id, title)

    async def delete_namespace(self, namespace_id: str) -> None:
        self._namespace(namespace_id)
        self.replication.check_clock()
        applied = self.replication.propose(
            [Write(RESERVED_NAMESPACE, namespace_id.encode(), tombstone=True)]
        )[0]
        await self.commit.durable(applied.ticket)

    def namespace_bytes(self, namespace_id: str) -> bytes:
        """The raw id of a live namespace; NamespaceNotFound otherwise."""
        return self._namespace(namespace_id)

    def _namespace(self, namespace_id: str) -> bytes:
        raw = cached_id_bytes(namespace_id)
        if raw is None or not self.replica.namespace_live(raw):
            raise NamespaceNotFound()
        return raw

    def _check_title_free(self, title: str, except_id: str | None = None) -> None:
        for key in self.replica.namespaces_titled(title.encode()):
            if key.decode() != except_id:
                raise NamespaceExists(
                    f'a namespace titled "{title}" already exists (id {key.decode()})'
                )

    # ---- writes ---------------------------------------------------------

    def validated(self, namespace: bytes, item: PutItem, now_s: float) -> Write:
        """``item`` checked as a Put checks it, as the write it makes in ``namespace``."""
        key = validation.key(item.key)
        validation.value_length(len(item.value))
        metadata = validation.metadata(item.metadata)
        expiration = validation.expiration(
            item.expiration, item.expiration_ttl, now_s=now_s, min_ttl=self.min_expiration_ttl
        )
        return Write(namespace, key, item.value, metadata, expiration)

    async def put(
        self, namespace_id: str, item: PutItem, min_replicas: int = 0, *, gather: bool = False
    ) -> Applied:
        """Write ``item``; with ``gather``, proposed with the other writes of this turn of
        the event loop (``gathered_writes``: the HTTP API's writes come together)."""
        write = self.validated(self._namespace(namespace_id), item, self.clock.now_s())
        applied = await self._gathered.write(write) if gather else self._propose_checked([write])[0]
        await self.commit.durable(applied.ticket)
        if min_replicas > 1:
            await self.replication.wait_for_replicas(applied.header.seq, min_replicas)
        return applied

    async def delete(self, namespace_id: str, key: bytes, *, gather: bool = False) -> Applied:
        write = Write(self._namespace(namespace_id), validation.key(key), tombstone=True)
        applied = await self._gathered.write(write) if gather else self._propose_checked([write])[0]
        await self.commit.durable(applied.ticket)
        return applied

    def _propose_checked(self, writes: Sequence[Write]) -> list[Applied]:
        self.replication.check_clock()
        return self.replication.propose(writes)

    async def bulk_put(self, namespace_id: str, items: Sequence[PutItem]) -> BulkWritten:
        """Validate every item, then write them all; a key given twice keeps its last item."""
        # Column by column (a transposition in C): most checks of a bulk write need no
        # Python per key.
        keys, values, expirations, ttls, metadata = zip(*items, strict=True) if items else ((),) * 5
        plain = expirations.count(None) == ttls.count(None) == metadata.count(None) == len(items)
        metadata_bytes = sum(map(len, filter(None, metadata)))
        return await self._bulk_put(
            namespace_id, keys, values, None if plain else items, metadata_bytes
        )

    async def bulk_put_plain(
        self, namespace_id: str, keys: Sequence[bytes], values: Sequence[bytes]
    ) -> BulkWritten:
        """``bulk_put`` of items that give only a key and a value, as two columns."""
        return await self._bulk_put(namespace_id, keys, values, None, 0)

    async def _bulk_put(
        self,
        namespace_id: str,
        keys: Sequence[bytes],
        values: Sequence[bytes],
        items: Sequence[PutItem] | None,  # None: only keys and values
        metadata_bytes: int,
    ) -> BulkWritten:
        namespace = self._namespace(namespace_id)
        total_bytes = sum(map(len, keys)) + sum(map(len, values)) + metadata_bytes
        validation.bulk_write_size(len(keys), total_bytes)
        now_s = self.clock.now_s()
        with collector_paused():
            if items is None and validation.all_keys_and_values_valid(keys, values):
                writes = [
                    Write(namespace, key, value) for key, value in zip(keys, values, strict=True)
                ]
            else:  # each item checked in turn: the first invalid one is reported
                each = items if items is not None else list(map(PutItem, keys, values))
                writes = [self.validated(namespace, item, now_s) for item in each]
            ticket, seq = self._write_many(_last_of_each_key(writes))
        await self.commit.durable(ticket)
        return BulkWritten(len(keys), seq)

    async def bulk_delete(self, namespace_id: str, keys: Sequence[bytes]) -> BulkWritten:
        namespace = self._namespace(namespace_id)
        validation.bulk_delete_size(len(keys))
        unique = dict.fromkeys(validation.key(key) for key in keys)
        with collector_paused():
            ticket, seq = self._write_many(
                [Write(namespace, key, tombstone=True) for key in unique]
            )
        await self.commit.durable(ticket)
        return BulkWritten(len(keys), seq)

    def _write_many(self, writes: list[Write]) -> tuple[int, int]:
        """Write ``writes``; returns the ticket to wait on for durability and the last seq
        written (taken in the same step: no other write can come between)."""
        if not writes:
            return 0, 0
        self.replication.check_clock()
        ticket = self.replication.propose_all(writes)
        return ticket, self.replica.seq

    # ---- reads ----------------------------------------------------------

    def get(self, namespace_id: str, key: bytes, cache_ttl: object = None) -> Found | None:
        """The live record of ``key``; ``cache_ttl`` is checked and ignored (reads are local)."""
        self.replication.check_readable()
        namespace = self._namespace(namespace_id)
        checked = validation.key(key)
        validation.cache_ttl(cache_ttl)
        found = self.replica.read(namespace, checked, self.clock.now_s())
        return None if found is None else Found(*found)

    def lag_bound(self) -> str | None:
        """The lag bound a read reports (``Sessions.lag_bound``); None: not known here."""
        return self.sessions.lag_bound()

    async def read(self, namespace_id: str, key: bytes, cache_ttl: object = None) -> Found | None:
        """``get`` for callers that may be served by another process (a worker's owner)."""
        return self.get(namespace_id, key, cache_ttl)

    async def read_many(
        self, namespace_id: str, keys: Sequence[bytes], cache_ttl: object = None
    ) -> list[Found | None]:
        """``get_many`` for callers that may be served by another process."""
        return self.get_many(namespace_id, keys, cache_ttl)

    def value_bytes(self, namespace_id: str, keys: Sequence[bytes]) -> int:
        """How many bytes reading ``keys`` would return, from their headers alone.

        For admission before a read (a value is read whole); 0 for what is
        missing or invalid: the read itself reports those.
        """
        raw = id_bytes(namespace_id)
        return 0 if raw is None else self.held_value_bytes(raw, keys)

    def held_value_bytes(self, namespace: bytes, keys: Sequence[bytes]) -> int:
        """``value_bytes`` for a namespace already checked (its raw id)."""
        store = self.replica.state.store
        total = 0
        for key in keys[: validation.MAX_BULK_GET_KEYS]:
            if key and len(key) <= validation.MAX_KEY_BYTES:
                header = reads.header(store, namespace, key)
                total += 0 if header is None else header.value_length
        return total

    def get_many(
        self, namespace_id: str, keys: Sequence[bytes], cache_ttl: object = None
    ) -> list[Found | None]:
        """Up to 100 keys at once, their values at most 25 MiB together."""
        self.replication.check_readable()
        namespace = self._namespace(namespace_id)
        validation.bulk_get_size(len(keys))
        checked = [validation.key(key) for key in keys]
        validation.cache_ttl(cache_ttl)
        results = [
            None if found is None else Found(*found)
            for found in self.replica.read_many(namespace, checked, self.clock.now_s())
        ]
        validation.bulk_get_total(sum(len(found.value) for found in results if found is not None))
        return results

    async def list_keys(
        self, namespace_id: str, prefix: bytes, limit: int | None, cursor: bytes
    ) -> KeyListing:
        """A filled page, read in slices with the loop free between them."""
        self.replication.check_readable()
        namespace = self._namespace(namespace_id)
        prefix = validation.prefix(prefix)
        limit = paging.list_limit(limit)
        start_after = paging.cursor(cursor)
        keys: list[tuple[bytes, RecordHeader]] = []
        resume_from: bytes | None = None
        while True:
            page = self.replica.list_page(
                namespace,
                prefix,
                start_after,
                limit - len(keys),
                self.clock.now_s(),
                scan_budget=LIST_SCAN_SLICE,
                resume_from=resume_from,
            )
            keys += page.keys
            if page.resume_from is None:
                break
            resume_from = page.resume_from
            await asyncio.sleep(0)
        next_cursor = b"" if page.complete else paging.encode_cursor(keys[-1][0])
        return KeyListing(keys, page.complete, next_cursor)
