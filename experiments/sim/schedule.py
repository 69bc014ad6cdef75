"""A simulation run as data: nodes, client writes and faults, drawn from one seed.

A ``Schedule`` is everything a run depends on besides the code: the seed
(node ids, boot nonces, the engines' rngs, latencies and losses all derive
from ``random.Random(seed)``), the durability mode, the canaries, when each
node starts and with which seeds, every client write and every fault. It is
written to JSON when it fails, shrunk by dropping parts, and replayed from
the file. Slots are addresses: the first ``len(nodes)`` start the cluster,
faults that start new processes (joins, duplicates) use slots above them.

Faults (``FaultPlan.kind``), each from ``at_ms`` for ``duration_ms``:

- ``partition``: ``slots`` against every other slot, both ways (``style``
  drop: calls time out; refuse: connections are rejected);
- ``oneway``: ``slots[0]`` cannot reach ``slots[1:]`` (they can reach it);
- ``loss``: a share ``value`` of every message is lost;
- ``delay``: ``value`` ms more on everything ``slots[0]`` sends;
- ``skew``: ``slots[0]``'s wall clock is ``value`` ms off;
- ``crash``: ``slots[0]`` crashes, restarts on its disk (``style`` keep) or on an
  empty one (wipe: a new node id);
- ``power``: ``slots[0]`` loses power (unsynced writes gone) and restarts;
- ``join``: ``slots[0]`` starts with seeds ``slots[1:]``; ``style`` late: its one seed
  ``slots[1]`` is a new node too, started ``duration_ms`` later with seed ``slots[2]``;
- ``restore``: a copy of ``slots[0]``'s disk is taken, and at the end it restarts on it;
- ``remove``: ``slots[1]`` removes ``slots[0]`` (``style`` dead: crashed first);
- ``duplicate``: a copy of live ``slots[0]``'s disk starts on new slot ``slots[1]``;
- ``forge``: a forged message to ``slots[0]`` (a Push from ``slots[1]``, or an
  Exchange reply: ``style``) claims watermark 2^63-1 for origin ``slots[2]``;
- ``split``: ``slots`` against the rest from time 0: two groups form apart and
  must merge once it heals (the first node of each group seeds the other's);
- ``snapjoin``: a fresh node ``slots[0]`` (empty data directory) joins with seeds
  ``slots[1:]`` once the cluster holds enough records to serve it a snapshot,
  while a burst of deletes (and puts) goes on for ``duration_ms`` and GC purges
  their tombstones: the join by snapshot under deletes and purges.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from rumor.node.replication.engine.canaries import Canary

NETWORK_FAULTS = ("partition", "oneway", "loss", "delay", "split")
FAULT_KINDS = (
    "partition",
    "oneway",
    "loss",
    "delay",
    "skew",
    "crash",
    "power",
    "join",
    "restore",
    "remove",
    "duplicate",
    "forge",
    "snapjoin",
)
WRITES_FROM_MS = 1200  # after the join timeout: every node is serving
WRITES_UNTIL_MS = 3700
FAULTS_FROM_MS = 300
FAULTS_UNTIL_MS = 3200
SNAPJOIN_FROM_MS = 1700  # the cluster holds enough records to serve a snapshot by then
SNAPJOIN_UNTIL_MS = 3000
WRITES_DURING_SNAPJOIN = 12


@dataclass(frozen=True, slots=True)
class NodePlan:
    slot: int
    start_ms: int
    seeds: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class WritePlan:
    at_ms: int
    slot: int
    key: int
    op: str  # put | delete | ttl
    ttl_s: int = 0


@dataclass(frozen=True, slots=True)
class FaultPlan:
    kind: str
    at_ms: int
    duration_ms: int
    slots: tuple[int, ...]
    style: str = ""
    value: float = 0.0

    @property
    def end_ms(self) -> int:
        return self.at_ms + self.duration_ms


@dataclass(frozen=True, slots=True)
class Schedule:
    seed: int
    durability: str  # fsync | wal
    canaries: tuple[Canary, ...]
    nodes: tuple[NodePlan, ...]
    writes: tuple[WritePlan, ...]
    faults: tuple[FaultPlan, ...]

    @property
    def heal_ms(self) -> int:
        """Every fault is over, and every write issued, by then."""
        ends = [f.end_ms for f in self.faults] + [w.at_ms for w in self.writes]
        return max([0, *ends]) + 1

    @property
    def slots(self) -> set[int]:
        used = {node.slot for node in self.nodes}
        for fault in self.faults:
            used.update(fault.slots)
        return used

    def without_slots(self, dropped: set[int]) -> Schedule:
        """The schedule with nodes ``dropped``: their writes, their faults, seeds to them."""
        nodes = tuple(
            replace(node, seeds=tuple(s for s in node.seeds if s not in dropped))
            for node in self.nodes
            if node.slot not in dropped
        )
        return replace(
            self,
            nodes=nodes,
            writes=tuple(w for w in self.writes if w.slot not in dropped),
            faults=tuple(f for f in self.faults if not dropped.intersection(f.slots)),
        )

    # ---- files ------------------------------------------------------------------

    def to_json(self) -> str:
        data = asdict(self)
        data["canaries"] = [canary.value for canary in self.canaries]
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Schedule:
        data = json.loads(text)
        return cls(
            seed=int(data["seed"]),
            durability=str(data["durability"]),
            canaries=tuple(Canary(name) for name in data["canaries"]),
            nodes=tuple(
                NodePlan(n["slot"], n["start_ms"], tuple(n["seeds"])) for n in data["nodes"]
            ),
            writes=tuple(WritePlan(**w) for w in data["writes"]),
            faults=tuple(FaultPlan(**{**f, "slots": tuple(f["slots"])}) for f in data["faults"]),
        )

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> Schedule:
        return cls.from_json(path.read_text())

    @property
    def forged_until_ms(self) -> int | None:
        """When the last forged message of the schedule was sent, if any."""
        ends = [fault.end_ms for fault in self.faults if fault.kind == "forge"]
        return max(ends) if ends else None


# ---- drawing a schedule ---------------------------------------------------------------


def generate(
    seed: int,
    *,
    durability: str = "fsync",
    canaries: tuple[Canary, ...] = (),
    nodes: tuple[int, int] = (5, 7),
    writes: int = 200,
    faults: int = 3,
    keys: int = 24,
) -> Schedule:
    """A random schedule: a cluster of ``nodes`` (a range), ``writes`` writes, ``faults`` faults."""
    rng = random.Random(seed)
    count = rng.randint(*nodes)
    slots = list(range(count))
    split = rng.random() < 0.3
    plans: list[FaultPlan] = []
    if split:
        side = tuple(slots[count // 2 :])
        plans.append(
            FaultPlan("split", 0, rng.randint(1500, 3000), side, rng.choice(("drop", "refuse")))
        )
        first_b = side[0]
        # The first node of each group seeds the other's; every other node seeds both
        # first nodes, so the groups still meet if one of the two is gone.
        node_plans = [
            NodePlan(
                slot,
                0 if slot < first_b else rng.randint(0, 400),
                (first_b,)
                if slot == 0
                else (0,)
                if slot == first_b
                else (0, first_b)
                if slot < first_b
                else (first_b, 0),
            )
            for slot in slots
        ]
    else:
        node_plans = [NodePlan(0, 0, ())] + [
            NodePlan(slot, rng.randint(0, 200), tuple(sorted({0, rng.choice(slots[:slot])})))
            for slot in slots[1:]
        ]
    next_slot = count
    burst: list[WritePlan] = []
    for _ in range(faults):
        kind = rng.choice(FAULT_KINDS)
        at = rng.randint(FAULTS_FROM_MS, FAULTS_UNTIL_MS)
        duration = rng.randint(200, 1200)
        victim = rng.choice(slots)
        other = rng.choice([s for s in slots if s != victim])
        style, value = "", 0.0
        fault_slots: tuple[int, ...] = (victim,)
        if kind == "partition":
            side = tuple(rng.sample(slots, rng.randint(1, count // 2)))
            fault_slots, style = tuple(sorted(side)), rng.choice(("drop", "refuse"))
        elif kind == "oneway":
            fault_slots = (
                victim,
                *sorted(rng.sample([s for s in slots if s != victim], rng.randint(1, count - 1))),
            )
        elif kind == "loss":
            value = rng.choice((0.2, 0.5, 0.9))
        elif kind == "delay":
            value = float(rng.choice((30, 150, 600)))
        elif kind == "skew":
            value = float(rng.choice((-1, 1)) * rng.choice((100, 400, 1500)))
        elif kind == "crash":
            style = rng.choice(("keep", "keep", "wipe"))
        elif kind == "join":
            style = rng.choice(("", "late"))
            # A joiner names two seeds, as a deployment does: one gone for good (removed)
            # must not leave it alone for ever.
            fault_slots = (
                (next_slot, next_slot + 1, victim)
                if style == "late"
                else (next_slot, victim, other)
            )
            next_slot += 2 if style == "late" else 1
        elif kind == "remove":
            # Never the founding node: every node names it as a seed, some only it, and
            # removing a cluster's only seed for ever is an operator's mistake that
            # leaves nodes that cannot find each other again, not a protocol fault.
            victim = rng.choice(slots[1:]) if len(slots) > 1 else victim
            other = rng.choice([s for s in slots if s != victim])
            fault_slots, style = (victim, other), rng.choice(("dead", "live"))
        elif kind == "duplicate":
            fault_slots = (victim, next_slot)
            next_slot += 1
        elif kind == "snapjoin":
            at = rng.randint(SNAPJOIN_FROM_MS, SNAPJOIN_UNTIL_MS)
            fault_slots = (next_slot, victim, other)
            next_slot += 1
            burst += _deletes_during(rng, at, duration, slots, keys)
        elif kind == "forge":
            fault_slots, style = (
                (victim, other, rng.choice(slots)),
                rng.choice(("push", "exchange")),
            )
        plans.append(FaultPlan(kind, at, duration, fault_slots, style, value))
    write_plans = []
    for _ in range(writes):
        op = rng.choices(("put", "delete", "ttl"), weights=(60, 25, 15))[0]
        write_plans.append(
            WritePlan(
                rng.randint(WRITES_FROM_MS, WRITES_UNTIL_MS),
                rng.choice(slots),
                rng.randrange(keys),
                op,
                rng.randint(1, 3) if op == "ttl" else 0,
            )
        )
    write_plans += burst
    write_plans.sort(key=lambda w: w.at_ms)
    return Schedule(
        seed=rng.getrandbits(63),
        durability=durability,
        canaries=tuple(sorted(canaries, key=lambda canary: canary.value)),
        nodes=tuple(node_plans),
        writes=tuple(write_plans),
        faults=tuple(sorted(plans, key=lambda f: f.at_ms)),
    )


def _deletes_during(
    rng: random.Random, at_ms: int, duration_ms: int, slots: list[int], keys: int
) -> list[WritePlan]:
    """A burst of deletes (and some puts, for them to delete) while a snapshot join runs."""
    return [
        WritePlan(
            rng.randint(at_ms, at_ms + duration_ms),
            rng.choice(slots),
            rng.randrange(keys),
            rng.choices(("delete", "put"), weights=(70, 30))[0],
        )
        for _ in range(WRITES_DURING_SNAPJOIN)
    ]
