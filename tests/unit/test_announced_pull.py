"""Announced records a push missed are fetched, and a lost fetch is asked again.

One engine is told, by two announcers, the id of a record it lacks. After
``pull_grace_ms`` it fetches it from the first; when no answer comes within
another grace, from the second; after three tries in all it leaves the
record to anti-entropy. A record that arrives meanwhile is not fetched.
"""

from __future__ import annotations

import random

from rumor.node.core.membership import Member, State
from rumor.node.replication.engine.engine import Engine
from rumor.node.replication.engine.membership import Membership
from rumor.node.replication.engine.messages import Audit, Envelope, Inbound, Now, Push
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.replica.replica import Durability, Replica
from rumor.node.storage import MemoryStore

WALL_MS = 1_700_000_000_000
CONFIG = ProtocolConfig.local()
GRACE = CONFIG.pull_grace_ms
ANNOUNCED = (77, 1, b"\x00\x00\x00\x01key")  # (origin, seq, namespace + key)


def receiver() -> Engine:
    store = MemoryStore()
    replica = Replica(
        store,
        new_node_id=3,
        wall_ms=WALL_MS,
        durability=Durability.FSYNC,
        max_clock_offset_ms=CONFIG.max_clock_offset_ms,
    )
    membership = Membership(store, Member(3, "r", 0, State.ALIVE, 3, ""))
    now = Now(0, WALL_MS)
    return Engine(replica, membership, CONFIG, rng=random.Random(1), advertise="r", now=now)


def announce(engine: Engine, sender: int, address: str, token: int, mono_ms: int) -> None:
    envelope = Envelope(sender=sender, boot_nonce=sender, hlc=0, address=address)
    engine.step(Inbound(token, envelope, Push(announced=(ANNOUNCED,))), Now(mono_ms, WALL_MS))
    engine.ready()


def fetches_at(engine: Engine, mono_ms: int) -> list[str]:
    """Where the engine sends fetches of the announced key when ticked at ``mono_ms``."""
    engine.tick(Now(mono_ms, WALL_MS))
    return [
        message.address
        for message in engine.ready().messages
        if isinstance(message.body, Audit) and ANNOUNCED[2] in message.body.fetch
    ]


def test_a_lost_fetch_is_asked_of_the_next_announcer_then_left_to_anti_entropy() -> None:
    engine = receiver()
    announce(engine, 1, "a", 1, 10)
    announce(engine, 2, "b", 2, 11)
    assert fetches_at(engine, 10 + GRACE // 2) == [], "not before the grace"
    assert fetches_at(engine, 10 + GRACE) == ["a"]
    assert fetches_at(engine, 10 + GRACE + GRACE // 2) == [], "the first fetch has its grace"
    assert fetches_at(engine, 10 + 2 * GRACE + 1) == ["b"]
    assert fetches_at(engine, 10 + 3 * GRACE + 2) == ["a"]
    assert fetches_at(engine, 10 + 5 * GRACE) == [], "three tries, then anti-entropy's"
    assert not engine.gossip.wanted
