"""WatchHub: publishing is O(1) on the write path; one fan-out task fills watchers' queues.

Pure logic on an event loop, no sockets: records are published as the replica
publishes them, and what each watcher's stream yields is read back.
"""

from __future__ import annotations

import asyncio

import pytest

from rumor.node.replication.replica.delta import WireRecord
from rumor.node.server import watch
from rumor.node.server.watch import ANY_NAMESPACE, SLICE_RECORDS, Watcher, WatchHub

NS = b"n" * 16
OTHER = b"o" * 16


def records(*keys: bytes, namespace: bytes = NS) -> list[WireRecord]:
    return [WireRecord(namespace, key, b"h" + key) for key in keys]


def hub(**limits: int) -> WatchHub:
    return WatchHub(lambda: 1_700_000_000_000, **limits)


async def settle(hub: WatchHub) -> None:
    while hub._fanning_out is not None:  # the fan-out task, when one runs
        await asyncio.sleep(0)


def queued(watcher: Watcher) -> list[bytes]:
    keys = []
    while not watcher.queue.empty():
        keys.append(watcher.queue.get_nowait().key)
    return keys


async def test_publishing_touches_no_watcher_and_the_fan_out_delivers_after() -> None:
    watches = hub()
    watchers = [watches.open(NS, b"", connection=f"c{i % 8}") for i in range(512)]
    watches.publish(records(b"a", b"b"))
    assert all(w.queue.empty() for w in watchers)  # the write path did not fan out
    await settle(watches)
    assert all(queued(w) == [b"a", b"b"] for w in watchers)


async def test_the_index_finds_watchers_by_namespace_and_prefix() -> None:
    watches = hub()
    user = watches.open(NS, b"user:")
    users_1 = watches.open(NS, b"user:1")
    everything = watches.open(NS, b"")
    other = watches.open(OTHER, b"")
    console = watches.open(ANY_NAMESPACE, b"")
    never = watches.open(NS, b"nothing-matches")
    watches.publish(records(b"user:1", b"user:2", b"item:1"))
    watches.publish(records(b"user:3", namespace=OTHER))
    await settle(watches)
    assert queued(user) == [b"user:1", b"user:2"]
    assert queued(users_1) == [b"user:1"]
    assert queued(everything) == [b"user:1", b"user:2", b"item:1"]
    assert queued(other) == [b"user:3"]
    assert queued(console) == [b"user:1", b"user:2", b"item:1", b"user:3"]
    assert queued(never) == []


async def test_a_closed_watcher_leaves_the_index() -> None:
    watches = hub()
    first, second = watches.open(NS, b"k"), watches.open(NS, b"k")
    watches.close(first)
    watches.close(second)
    assert watches._index == {} and watches._lengths == {}
    kept = watches.open(NS, b"k")
    watches.publish(records(b"k1"))
    await settle(watches)
    assert queued(kept) == [b"k1"] and queued(first) == []


async def test_a_large_batch_is_fanned_out_in_slices_and_in_order() -> None:
    watches = hub(max_buffer=10 * SLICE_RECORDS)
    watcher = watches.open(NS, b"")
    keys = [b"k%06d" % i for i in range(3 * SLICE_RECORDS + 7)]
    watches.publish(records(*keys))
    seen_between: list[int] = []

    async def meanwhile() -> None:
        seen_between.append(watcher.queue.qsize())

    other = asyncio.create_task(meanwhile())
    await settle(watches)
    await other
    assert 0 < seen_between[0] < len(keys)  # another task ran between two slices
    assert queued(watcher) == keys


async def test_a_slow_watcher_is_dropped_with_a_count_then_told_it_fell_behind() -> None:
    watches = hub()
    slow = watches.open(NS, b"", buffer=2)
    watches.publish(records(b"a", b"b", b"c", b"d", b"e"))
    await settle(watches)
    assert slow.queue.qsize() == 2 and slow.dropped == 3
    stream = watches.follow(slow)
    assert await anext(stream) == (3, None)
    first = await anext(stream)
    assert first[0] == 0 and first[1] is not None and first[1].key == b"a"
    await stream.aclose()


async def test_a_watcher_opened_after_a_publish_does_not_get_that_batch() -> None:
    watches = hub()
    watches.open(NS, b"")
    watches.publish(records(b"before"))
    late = watches.open(NS, b"")
    watches.publish(records(b"after"))
    await settle(watches)
    assert queued(late) == [b"after"]


async def test_a_backlog_beyond_its_bound_is_counted_as_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(watch, "MAX_PENDING_RECORDS", 4)
    watches = hub()
    watcher = watches.open(NS, b"k")
    watches.publish(records(b"k1", b"k2", b"x"))  # being fanned out: kept
    watches.publish(records(b"k3", b"k4", b"x"))  # over the bound: dropped
    await settle(watches)
    assert queued(watcher) == [b"k1", b"k2"]
    assert watcher.dropped == 2


def test_without_an_event_loop_publish_fans_out_at_once() -> None:
    watches = hub()
    watcher = watches.open(NS, b"")
    watches.publish(records(b"a"))
    assert queued(watcher) == [b"a"]
