"""build(): the one place a replica, its membership and the engine are wired (no I/O)."""

from __future__ import annotations

import random

import pytest

from rumor.node.core.membership import State
from rumor.node.replication.engine.build import Identity, build
from rumor.node.replication.engine.engine import Engine
from rumor.node.replication.engine.messages import Now
from rumor.node.replication.engine.protocol_config import ProtocolConfig, ProtocolConfigError
from rumor.node.replication.replica.delta import WireRecord
from rumor.node.replication.replica.replica import Durability, Write
from rumor.node.storage.memory import MemoryStore

WALL_MS = 1_700_000_000_000
NAMESPACE = bytes(16)
ME = Identity(new_node_id=41, boot_nonce=7, address="n1:7401", name="one", seeds=("n2:7401",))


def built(
    config: ProtocolConfig, store: MemoryStore | None = None, identity: Identity = ME
) -> Engine:
    return build(
        store or MemoryStore(),
        identity,
        config,
        rng=random.Random(1),
        now=Now(0, WALL_MS),
        durability=Durability.WAL,
    )


@pytest.mark.parametrize("profile", ["lan", "local", "wan"])
def test_membership_timers_come_from_the_protocol_config(profile: str) -> None:
    config = ProtocolConfig.profile(profile).replace(
        suspicion_timeout_ms=1234, member_timeout_ms=98_765
    )
    membership = built(config).membership
    assert membership.suspicion_timeout_ms == 1234  # not Membership's own default
    assert membership.member_timeout_ms == 98_765


def test_the_identity_is_announced_and_kept() -> None:
    engine = built(ProtocolConfig.local())
    me = engine.membership.me
    assert (me.id, me.address, me.name, me.boot_nonce) == (41, "n1:7401", "one", 7)
    assert me.state is State.ALIVE
    assert engine.replica.node_id == 41
    assert (engine.advertise, engine.name) == ("n1:7401", "one")
    assert me in engine.membership.updates(limit=8)  # this boot's address is gossiped


def test_a_store_that_holds_an_id_keeps_it() -> None:
    store = MemoryStore()
    built(ProtocolConfig.local(), store)
    again = built(
        ProtocolConfig.local(), store, Identity(new_node_id=99, boot_nonce=8, address="x:1")
    )
    assert again.replica.node_id == 41
    assert again.membership.me.boot_nonce == 8


def test_an_invalid_config_is_refused_before_anything_is_written() -> None:
    store = MemoryStore()
    with pytest.raises(ProtocolConfigError, match="fanout must be at least 1"):
        built(ProtocolConfig.local().replace(fanout=0), store)
    other = Identity(new_node_id=99, boot_nonce=8, address="x:1")
    assert built(ProtocolConfig.local(), store, other).replica.node_id == 99  # none was taken


def test_listeners_are_installed_before_the_engine_runs() -> None:
    heard: list[list[WireRecord]] = []
    engine = build(
        MemoryStore(),
        ME,
        ProtocolConfig.local(),
        rng=random.Random(1),
        now=Now(0, WALL_MS),
        durability=Durability.WAL,
        listeners=(heard.append,),
    )
    engine.replica.write(Write(NAMESPACE, b"k", b"v"), WALL_MS)
    assert [record.key for batch in heard for record in batch] == [b"k"]
