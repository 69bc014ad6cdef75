"""Drawing a random schedule from a seed: the cluster's shape, its faults, its writes.

``generate(seed)`` draws every part from ``random.Random(seed)`` in a fixed
order — the cluster, then each fault, then the writes — so a seed is a
schedule (the fuzz's schedule ``i`` of a seed is drawn from a seed of its
own: ``fuzz.schedule_for``). The
cluster is one (node 0 founds it; every other node seeds it and one node
started before it) or, three times in ten, two groups started apart by a
``split`` fault that must merge once it heals. Each fault draws what every
fault draws, then what its kind draws (``schedule.DRAWS``). The writes —
puts, deletes and puts with a TTL, over ``keys`` keys, each on a random
node — come between ``WRITES_FROM_MS`` (every node is serving) and
``WRITES_UNTIL_MS``, with the burst a ``snapjoin`` adds. Session clients
draw from a generator of their own, so adding them leaves the rest of a
seed's schedule as it was.
"""

from __future__ import annotations

import random

from rumor.experiments.faults import FaultKind
from rumor.experiments.sim.schedule import (
    DRAWS,
    FaultDrawing,
    FaultPlan,
    NodePlan,
    Schedule,
    SessionPlan,
    WritePlan,
)
from rumor.node.replication.engine.canaries import Canary

WRITES_FROM_MS = 1200  # after the join timeout: every node is serving
WRITES_UNTIL_MS = 3700


def generate(
    seed: int,
    *,
    durability: str = "fsync",
    canaries: tuple[Canary, ...] = (),
    nodes: tuple[int, int] = (5, 7),
    writes: int = 200,
    faults: int = 3,
    keys: int = 24,
    session_clients: int = 0,
    kinds: frozenset[FaultKind] | None = None,
) -> Schedule:
    """A random schedule: a cluster of ``nodes`` (a range), ``writes`` writes, ``faults`` faults,
    and ``session_clients`` clients that move between nodes in a session.

    Every draw comes from ``random.Random(seed)`` in a fixed order (the
    cluster, then each fault, then the writes), so a seed is a schedule; the
    session clients draw from their own generator, so adding them leaves the
    rest of a seed's schedule as it was. ``kinds`` (default: every kind of
    ``DRAWS``) limits what the faults may be: a seed drawn with the kinds of an
    earlier release is the schedule that release drew (regression tests pin
    schedules that way).
    """
    rng = random.Random(seed)
    count = rng.randint(*nodes)
    slots = list(range(count))
    plans: list[FaultPlan] = []
    if rng.random() < 0.3:
        split, node_plans = _split_cluster(rng, slots)
        plans.append(split)
    else:
        node_plans = _one_cluster(rng, slots)
    drawn = tuple(kind for kind in DRAWS if kinds is None or kind in kinds)
    drawing = FaultDrawing(rng, slots, keys, next_slot=count, kinds=drawn)
    plans += [drawing.fault() for _ in range(faults)]
    write_plans = [_write(rng, slots, keys) for _ in range(writes)] + drawing.burst
    write_plans.sort(key=lambda w: w.at_ms)
    return Schedule(
        seed=rng.getrandbits(63),
        durability=durability,
        canaries=tuple(sorted(canaries, key=lambda canary: canary.value)),
        nodes=tuple(node_plans),
        writes=tuple(write_plans),
        faults=tuple(sorted(plans, key=lambda f: f.at_ms)),
        sessions=_sessions(random.Random(seed * 7919 + 17), slots, session_clients),
    )


SESSION_CALLS = 40
SESSION_KEYS = 4


def _sessions(rng: random.Random, slots: list[int], clients: int) -> tuple[SessionPlan, ...]:
    """Each client: calls on random nodes over a few keys of its own kind (session-key-N)."""
    plans = []
    for client in range(clients):
        calls = tuple(
            (
                rng.choice(slots),
                rng.randrange(SESSION_KEYS),
                rng.choices(("read", "put", "delete"), weights=(50, 40, 10))[0],
            )
            for _ in range(SESSION_CALLS)
        )
        plans.append(SessionPlan(client, rng.randint(WRITES_FROM_MS, WRITES_FROM_MS + 500), calls))
    return tuple(plans)


def _one_cluster(rng: random.Random, slots: list[int]) -> list[NodePlan]:
    """Node 0 founds the cluster; each other node seeds it and one node started before it."""
    return [NodePlan(0, 0, ())] + [
        NodePlan(slot, rng.randint(0, 200), tuple(sorted({0, rng.choice(slots[:slot])})))
        for slot in slots[1:]
    ]


def _split_cluster(rng: random.Random, slots: list[int]) -> tuple[FaultPlan, list[NodePlan]]:
    """Two groups that start apart (the ``split`` fault) and must merge once it heals.

    The first node of each group seeds the other's; every other node seeds both
    first nodes, so the groups still meet if one of the two is gone.
    """
    side = tuple(slots[len(slots) // 2 :])
    split = FaultPlan(
        FaultKind.SPLIT, 0, rng.randint(1500, 3000), side, rng.choice(("drop", "refuse"))
    )
    first_b = side[0]

    def seeds(slot: int) -> tuple[int, ...]:
        if slot == 0:
            return (first_b,)
        if slot == first_b:
            return (0,)
        return (0, first_b) if slot < first_b else (first_b, 0)

    node_plans = [
        NodePlan(slot, 0 if slot < first_b else rng.randint(0, 400), seeds(slot)) for slot in slots
    ]
    return split, node_plans


def _write(rng: random.Random, slots: list[int], keys: int) -> WritePlan:
    op = rng.choices(("put", "delete", "ttl"), weights=(60, 25, 15))[0]
    return WritePlan(
        rng.randint(WRITES_FROM_MS, WRITES_UNTIL_MS),
        rng.choice(slots),
        rng.randrange(keys),
        op,
        rng.randint(1, 3) if op == "ttl" else 0,
    )
