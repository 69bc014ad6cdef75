"""Watch: every change a node applies reaches the watchers of its prefix; slow ones are told."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from rumor.client import AsyncClient, Change, Client
from rumor.v1 import kv_pb2 as pb
from tests.support.nodes import NodeProcess, poll


class Reader:
    """Drains a watch stream on a thread, so a test can wait for events with a deadline."""

    def __init__(self, stream: Iterator[Any]) -> None:
        self.stream = stream
        self.events: queue.Queue[Any] = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for event in self.stream:
                self.events.put(event)
        except grpc.RpcError:
            pass

    def take(self, timeout: float = 10.0) -> Any:
        return self.events.get(timeout=timeout)


def _registered(put: Any, reader: Reader) -> Any:
    """Write probes until one comes back through the watch: the watch is then live."""

    def probe() -> Any:
        put()
        try:
            return reader.events.get(timeout=0.05)
        except queue.Empty:
            return None

    return poll(probe, timeout=10)


def _drain(reader: Reader) -> None:
    while True:
        try:
            reader.events.get(timeout=0.2)
        except queue.Empty:
            return


def test_watch_streams_puts_and_deletes_under_the_prefix(node: NodeProcess, ns: str) -> None:
    with Client(node.address, timeout=10) as kv:
        namespace = kv.namespace(ns)
        reader = Reader(namespace.watch(prefix="user:"))
        _registered(lambda: namespace.put("user:probe", "p"), reader)
        _drain(reader)
        namespace.put("other:1", "ignored")
        namespace.put("user:1", "ada", expiration_ttl=600)
        namespace.delete("user:1")
        put, deleted = reader.take(), reader.take()
    assert (put.key, deleted.key) == ("user:1", "user:1")
    assert not put.deleted and put.expiration is not None and put.local
    assert deleted.deleted and (deleted.hlc, deleted.origin) > (put.hlc, put.origin)
    assert deleted.seq == put.seq + 1
    assert put.applied_wall_ms > 0 and put.applied_monotonic_ns > 0


def test_a_slow_watcher_is_told_it_fell_behind(node: NodeProcess, ns: str) -> None:
    stream = node.kv.Watch(pb.WatchRequest(namespace_id=ns, prefix=b"", buffer=5))
    reader = Reader(stream)
    _registered(
        lambda: node.kv.Put(pb.PutRequest(namespace_id=ns, key=b"warm", value=b"x")), reader
    )
    _drain(reader)
    # Hold the reader back: the node's queue for it fills while 50 changes are applied.
    events = reader.events
    node.kv.BulkPut(
        pb.BulkPutRequest(
            namespace_id=ns, items=[pb.PutRequest(key=b"k%03d" % i, value=b"v") for i in range(50)]
        )
    )
    received = [events.get(timeout=10) for _ in range(6)]
    stream.cancel()
    notices = [e for e in received if e.fell_behind]
    # The reader thread may keep up with some of them, but not with 50 in one batch.
    assert notices, [e.key for e in received]
    assert notices[0].dropped > 0


def test_watch_of_an_unknown_namespace_is_not_found(node: NodeProcess) -> None:
    stream = node.kv.Watch(pb.WatchRequest(namespace_id="0" * 31 + "7"), timeout=10)
    with pytest.raises(grpc.RpcError) as failure:
        next(stream)
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND


def test_async_watch(node: NodeProcess, ns: str) -> None:
    async def scenario() -> list[Change]:
        async with AsyncClient(node.address) as kv:
            namespace = kv.namespace(ns)
            seen: list[Change] = []

            async def read() -> None:
                async for change in namespace.watch(prefix="a"):
                    seen.append(change)
                    if change.key == "a-last":
                        return

            reader = asyncio.create_task(read())
            for _ in range(200):  # until the watch is registered
                await namespace.put("a-probe", "p")
                await asyncio.sleep(0.02)
                if seen:
                    break
            await namespace.put("a-last", "done")
            await asyncio.wait_for(reader, 10)
            return seen

    seen = asyncio.run(scenario())
    assert seen[-1].key == "a-last" and not seen[-1].deleted
