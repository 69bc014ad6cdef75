"""A session read's catch-up, sans-I/O: what the node lacks, and whom the engine asks."""

from __future__ import annotations

import random

import pytest

from rumor.node.core.membership import Member, State
from rumor.node.replication.engine.engine import Engine
from rumor.node.replication.engine.membership import Membership
from rumor.node.replication.engine.messages import Envelope, Exchange, Inbound, Now, Push
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.replica.replica import Durability, Replica
from rumor.node.storage import MemoryStore

WALL_MS = 1_700_000_000_000
CONFIG = ProtocolConfig.local()


def node() -> Engine:
    store = MemoryStore()
    replica = Replica(
        store,
        new_node_id=3,
        wall_ms=WALL_MS,
        durability=Durability.FSYNC,
        max_clock_offset_ms=CONFIG.max_clock_offset_ms,
    )
    membership = Membership(store, Member(3, "me", 0, State.ALIVE, 3, ""))
    engine = Engine(
        replica, membership, CONFIG, rng=random.Random(1), advertise="me", now=Now(0, WALL_MS)
    )
    for token, (sender, address) in enumerate([(1, "one"), (2, "two")], start=1):
        envelope = Envelope(sender=sender, boot_nonce=sender, hlc=0, address=address)
        engine.step(Inbound(token, envelope, Push()), Now(0, WALL_MS))
    engine.ready()
    return engine


def exchanges_after(engine: Engine, wanted: dict[int, int]) -> list[str]:
    engine.catch_up_with(wanted, Now(1, WALL_MS))
    engine.tick(Now(1, WALL_MS))
    return [m.address for m in engine.ready().messages if isinstance(m.body, Exchange)]


def test_what_a_replica_lacks_of_a_token() -> None:
    engine = node()
    replica = engine.replica
    replica.watermarks.cover(1, 5)
    assert replica.lacking({1: 5}) == {}
    assert replica.lacking({1: 7, 2: 1}) == {1: 5, 2: 0}
    assert replica.lacking({}) == {}


def test_an_origin_removed_for_ever_is_covered() -> None:
    engine = node()
    engine.remove_member(2, Now(1, WALL_MS))
    assert engine.replica.lacking({2: 40}) == {}


@pytest.mark.parametrize(("origin", "address"), [(1, "one"), (2, "two")])
def test_the_engine_pulls_at_once_from_the_origin_when_it_is_up(origin: int, address: str) -> None:
    assert exchanges_after(node(), {origin: 9}) == [address]


def test_an_origin_that_is_not_a_member_is_pulled_from_a_peer_that_holds_it() -> None:
    engine = node()
    engine.membership.vectors[2] = {99: 10}
    assert exchanges_after(engine, {99: 10}) == ["two"]
    engine = node()
    engine.membership.vectors[1] = {99: 10}
    assert exchanges_after(engine, {99: 10}) == ["one"]
