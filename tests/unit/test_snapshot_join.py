"""Bootstrap by snapshot in the engine, and the crash-safe install of a downloaded copy.

Engine: a fresh joiner answers a JoinReply with Admit; the peer says yes only
once the admission is durable; the joiner then asks its driver to fetch;
a fetched copy stops it for the install, a failed fetch falls back to
anti-entropy; a node with records of its own never asks. Install: a crash
in any phase of the swap is finished by the next start-up.
"""

from __future__ import annotations

import asyncio
import random
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest

from rumor.node.core.membership import Member, State
from rumor.node.replication.engine.engine import Engine
from rumor.node.replication.engine.membership import Membership
from rumor.node.replication.engine.messages import (
    Admit,
    AdmitReply,
    Done,
    Exchange,
    Inbound,
    NoticeKind,
    Now,
    Outbound,
    Ready,
    Refusal,
    Response,
    SnapshotFetch,
)
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.replica.replica import Durability, Replica, Write
from rumor.node.server.snapshot import swap as snapshot_swap
from rumor.node.server.snapshot.client import SnapshotFailed, download
from rumor.node.storage import MemoryStore, RocksStore
from rumor.node.storage.store import KV, META
from rumor.v1 import replication_pb2 as pb

NOW = Now(1_000, 1_700_000_000_000)
CONFIG = ProtocolConfig.local().replace(snapshot_bootstrap=True, snapshot_min_records=0)


def engine(
    node_id: int, address: str, seeds: tuple[str, ...] = (), config: ProtocolConfig = CONFIG
) -> Engine:
    store = MemoryStore()
    replica = Replica(
        store,
        new_node_id=node_id,
        wall_ms=NOW.wall_ms,
        durability=Durability.FSYNC,
        max_clock_offset_ms=CONFIG.max_clock_offset_ms,
    )
    membership = Membership(store, Member(node_id, address, 0, State.ALIVE, node_id, ""))
    return Engine(
        replica, membership, config, rng=random.Random(1), seeds=seeds, advertise=address, now=NOW
    )


def deliver(message: Outbound, sender: Engine, to: Engine) -> Ready:
    """Hand ``message`` to ``to``; its reply (if any yet) goes back to ``sender``."""
    to.step(Inbound(message.message_id, message.envelope, message.body), NOW)
    ready = to.ready()
    for reply in ready.replies:
        if reply.token == message.message_id and not isinstance(reply.body, Refusal):
            sender.step(Response(message.message_id, reply.envelope, reply.body), NOW)
    return ready


def join(joiner: Engine, seed: Engine) -> Outbound:
    """The joiner's Join goes to the seed and its answer comes back: the next request."""
    joiner.tick(NOW)
    (request,) = [m for m in joiner.ready().messages if m.address == "seed"]
    deliver(request, joiner, seed)
    follow_up = [m for m in joiner.ready().messages if m.address == "seed"]
    assert follow_up, "the joiner asks the seed something after its Join"
    return follow_up[0]


def test_a_fresh_joiner_is_admitted_only_once_durable_then_fetches_then_stops_to_install() -> None:
    seed, joiner = engine(1, "seed"), engine(2, "joiner", ("seed",))
    admit = join(joiner, seed)
    assert isinstance(admit.body, Admit)
    ready = deliver(admit, joiner, seed)
    assert not ready.replies, "no yes before the admission is durable"
    assert ready.sync_ticket
    assert seed.snapshots.may_serve(2)
    seed.advance(Done(synced_ticket=ready.sync_ticket), NOW)
    (reply,) = seed.ready().replies
    assert reply.body == AdmitReply(True)
    assert not isinstance(reply.body, Refusal)
    joiner.step(Response(admit.message_id, reply.envelope, reply.body), NOW)
    assert joiner.ready().snapshot_fetch == SnapshotFetch(1, "seed")
    joiner.tick(NOW)
    assert not any(isinstance(m.body, Exchange) for m in joiner.ready().messages)
    joiner.advance(Done(snapshot_fetched=True), NOW)
    kinds = [n.kind for n in joiner.ready().notices]
    assert NoticeKind.INSTALL_SNAPSHOT in kinds
    assert not joiner.serving


def test_a_failed_fetch_falls_back_to_anti_entropy_with_the_same_peer() -> None:
    seed, joiner = engine(1, "seed"), engine(2, "joiner", ("seed",))
    admit = join(joiner, seed)
    ready = deliver(admit, joiner, seed)
    seed.advance(Done(synced_ticket=ready.sync_ticket), NOW)
    (reply,) = seed.ready().replies
    assert not isinstance(reply.body, Refusal)
    joiner.step(Response(admit.message_id, reply.envelope, reply.body), NOW)
    assert joiner.ready().snapshot_fetch is not None
    joiner.advance(Done(snapshot_failed="stream broke"), NOW)
    out = joiner.ready()
    assert any(isinstance(m.body, Exchange) and m.to == 1 for m in out.messages)
    assert NoticeKind.INSTALL_SNAPSHOT not in [n.kind for n in out.notices]


def test_a_peer_not_serving_yet_refuses_and_the_joiner_falls_back() -> None:
    seed, joiner = engine(1, "seed", ("elsewhere",)), engine(2, "joiner", ("seed",))
    assert not seed.serving
    admit = join(joiner, seed)
    deliver(admit, joiner, seed)
    assert any(isinstance(m.body, Exchange) for m in joiner.ready().messages)


def test_a_peer_holding_few_records_says_no_and_the_joiner_takes_anti_entropy() -> None:
    seed = engine(1, "seed", config=CONFIG.replace(snapshot_min_records=10))
    joiner = engine(2, "joiner", ("seed",))
    seed.propose([Write(b"\0" * 16, b"k%d" % i, b"v") for i in range(9)], NOW)
    admit = join(joiner, seed)
    assert isinstance(admit.body, Admit)
    ready = deliver(admit, joiner, seed)
    assert [r.body for r in ready.replies] == [
        AdmitReply(False, "few records: anti-entropy is quicker")
    ]
    assert not seed.snapshots.may_serve(2)
    assert any(isinstance(m.body, Exchange) for m in joiner.ready().messages)


def test_a_node_with_records_of_its_own_never_asks_for_a_snapshot() -> None:
    seed, joiner = engine(1, "seed"), engine(2, "joiner", ("seed",))
    joiner.propose([Write(b"\0" * 16, b"k", b"v")], NOW)
    first = join(joiner, seed)
    assert isinstance(first.body, Exchange)


# ---- the install across a restart ------------------------------------------------


def _store_with(path: Path, key: bytes) -> None:
    store = RocksStore(path)
    batch = store.batch()
    batch.put(KV, key, b"1")
    batch.put(META, b"whose", key)
    store.write(batch)
    store.close()


@pytest.mark.parametrize("crash_after", ["nothing", "marker", "deleted", "half-moved"])
def test_an_install_interrupted_anywhere_is_finished_at_the_next_start(
    tmp_path: Path, crash_after: str
) -> None:
    data = tmp_path / "data"
    _store_with(data, b"own")
    _store_with(data / "incoming" / "db", b"copy")
    if crash_after == "nothing":
        snapshot_swap.begin(data)
    else:
        old = sorted(p.name for p in data.iterdir() if p.is_file() and p.name != "LOCK")
        snapshot_swap._write_marker(data, {"phase": "delete", "old": old})
        if crash_after in ("deleted", "half-moved"):
            for name in old[: len(old) // 2 if crash_after == "deleted" else len(old)]:
                (data / name).unlink()
        if crash_after == "half-moved":
            snapshot_swap._write_marker(data, {"phase": "move"})
            first = sorted((data / "incoming" / "db").iterdir())[0]
            first.rename(data / first.name)
        assert snapshot_swap.resume(data)
    assert not (data / "incoming").exists()
    store = RocksStore(data)
    try:
        assert store.get(META, b"whose") == b"copy"
        assert store.get(KV, b"own") is None
    finally:
        store.close()


def test_an_unfinished_download_is_dropped_and_the_own_store_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _store_with(data, b"own")
    _store_with(data / "incoming" / "db", b"copy")
    assert not snapshot_swap.resume(data)
    assert not (data / "incoming").exists()
    store = RocksStore(data)
    try:
        assert store.get(META, b"whose") == b"own"
    finally:
        store.close()


# ---- the download ------------------------------------------------------------------


def _served(files: dict[str, bytes], chunk: int) -> list[pb.SnapshotChunk]:
    """What a peer would stream from the start: the list, then chunks of ``chunk`` bytes."""
    names = sorted(files)
    listing = [
        pb.SnapshotFile(name=n, size=len(files[n]), crc32=zlib.crc32(files[n])) for n in names
    ]
    out = [pb.SnapshotChunk(snapshot_id="s1", files=listing)]
    for index, name in enumerate(names):
        data = files[name]
        for offset in range(0, len(data), chunk):
            piece = data[offset : offset + chunk]
            out.append(
                pb.SnapshotChunk(
                    file_index=index, offset=offset, data=piece, crc32=zlib.crc32(piece)
                )
            )
    return out


class _Broken(grpc.aio.AioRpcError):
    def __init__(self) -> None:
        super().__init__(
            grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "broken", ""
        )


def test_a_broken_stream_resumes_from_the_file_and_offset_it_reached(tmp_path: Path) -> None:
    files = {"000009.sst": bytes(range(256)) * 40, "CURRENT": b"MANIFEST-1\n", "EMPTY": b""}
    chunks = _served(files, 1000)
    asked: list[tuple[str, int, int]] = []

    async def stream(
        request: pb.SnapshotRequest, timeout_s: float
    ) -> AsyncIterator[pb.SnapshotChunk]:
        asked.append((request.snapshot_id, request.file_index, request.offset))
        start = next(
            i
            for i, c in enumerate(chunks)
            if i > 0 and (c.file_index, c.offset) >= (request.file_index, request.offset)
        )
        yield chunks[0]
        for position, chunk in enumerate(chunks[start:], start):
            if len(asked) == 1 and position == 4:
                raise _Broken()
            yield chunk

    target = asyncio.run(download(stream, 2, tmp_path))
    assert asked == [("", 0, 0), ("s1", 0, 3000)]
    assert {p.name: p.read_bytes() for p in target.iterdir()} == files


def test_a_corrupt_chunk_fails_the_download(tmp_path: Path) -> None:
    chunks = _served({"000009.sst": b"x" * 3000}, 1000)
    chunks[2] = pb.SnapshotChunk(file_index=0, offset=1000, data=b"y" * 1000, crc32=1)

    async def stream(
        request: pb.SnapshotRequest, timeout_s: float
    ) -> AsyncIterator[pb.SnapshotChunk]:
        for chunk in chunks:
            yield chunk

    with pytest.raises(SnapshotFailed, match="checksum"):
        asyncio.run(download(stream, 2, tmp_path))
