"""One place that wires a replica, its membership and the engine: ``build``.

``rumor node`` and the simulator both call ``build``, so the engine the
simulator fuzzes is the engine the node runs, down to every constructor
argument. The rules:

- Every protocol setting comes from the one ``ProtocolConfig`` passed in,
  which is validated here; nothing is read from anywhere else.
- Who the process is (``Identity``), the time at start and the random source
  are passed in; nothing here reads a clock, the OS or the network.
- What the caller wants told (``listeners``: records as they first arrive)
  is passed in as hooks and installed before the engine runs, never
  assigned afterwards.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rumor.node.core.compatibility import Speaks
from rumor.node.core.membership import Member, State
from rumor.node.replication.engine.canaries import Canary
from rumor.node.replication.engine.engine import Engine
from rumor.node.replication.engine.membership import Membership
from rumor.node.replication.engine.messages import Now
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.replica.delta import WireRecord
from rumor.node.replication.replica.replica import Durability, Replica
from rumor.node.storage.store import Store


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a process is, for one boot."""

    new_node_id: int  # taken only on a first start: a store that holds an id keeps it
    boot_nonce: int  # this boot; a later boot of the same id must compare greater
    address: str  # where peers reach this node (its advertised address)
    name: str = ""  # a human name for logs and status
    seeds: tuple[str, ...] = ()  # HOST:PORT to join through; none: a new cluster
    speaks: Speaks | None = None  # protocol versions and features (None: this release's)


def build(
    store: Store,
    identity: Identity,
    config: ProtocolConfig,
    *,
    rng: random.Random,
    now: Now,
    durability: Durability,
    listeners: Sequence[Callable[[list[WireRecord]], None]] = (),
    canaries: frozenset[Canary] = frozenset(),
) -> Engine:
    """The engine on ``store``, with its replica (``engine.replica``) and membership.

    ``canaries`` are the simulator's switches that bring back fixed bugs (none
    in a node).
    """
    config.validate()
    replica = Replica(
        store,
        new_node_id=identity.new_node_id,
        wall_ms=now.wall_ms,
        durability=durability,
        max_clock_offset_ms=config.max_clock_offset_ms,
    )
    replica.listeners.extend(listeners)
    me = Member(replica.node_id, "", 0, State.ALIVE, identity.boot_nonce, identity.name)
    membership = Membership(
        store,
        me,
        suspicion_timeout_ms=config.suspicion_timeout_ms,
        member_timeout_ms=config.member_timeout_ms,
        unconfirmed_timeout_ms=config.unconfirmed_member_timeout_ms,
    )
    membership.announce(identity.address)  # this boot's address, gossiped to the members
    return Engine(
        replica,
        membership,
        config,
        rng=rng,
        seeds=identity.seeds,
        advertise=identity.address,
        name=identity.name,
        now=now,
        canaries=canaries,
        speaks=identity.speaks,
    )
