"""A simulation run as data: nodes, client writes and faults, drawn from one seed.

A ``Schedule`` is everything a run depends on besides the code: the seed
(node ids, boot nonces, the engines' rngs, latencies and losses all derive
from ``random.Random(seed)``), the durability mode, the canaries, when each
node starts and with which seeds, every client write and every fault, and
the calls of session clients that move between nodes (``session_clients``). It is
written to JSON when it fails, shrunk by dropping parts, and replayed from
the file; ``random_schedule`` draws one from a seed. Slots are addresses: the
first ``len(nodes)`` start the cluster, faults that start new processes
(joins, duplicates) use slots above them.

Faults (``FaultPlan.kind``), each from ``at_ms`` for ``duration_ms``:

- ``partition``: ``slots`` against every other slot, both ways (``style``
  drop: calls time out; refuse: connections are rejected);
- ``block`` (formerly ``oneway``): ``slots[0]`` cannot reach ``slots[1:]`` (they can reach it);
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
  their tombstones: the join by snapshot under deletes and purges;
- ``stale_backup``: a backup of ``slots[0]`` is taken; at the end its disk is
  lost and the backup restored as ``rumor admin restore`` does, started with
  the node's seeds: refused (a restored backup starts a new cluster), so the
  operator starts the node on an empty disk (never the founding node: it has
  no seeds to be refused with, see ``_stale_backup``).
- ``replace``: a fresh process (a new id, an empty disk) takes ``slots[0]``'s
  address at once, as a pod replaced with a new volume does: the old id must
  not be kept alive by the new process's answers, and must stop holding GC back;
- ``return``: ``slots[0]`` crashes and stays down for ``duration_ms``, past the
  fuzz's member timeout (``DOWN_PAST_TIMEOUT_MS``), then comes back on its old
  disk with ``--rejoin-as-new``: refused as retired, it wipes and joins as a new
  node, and nothing it held comes back.

``DRAWS`` is the fault kinds table: per kind, what a fault of that kind draws
besides what every fault draws (``FaultDrawing.fault``: the kind, a start, a
duration, a victim and another node), so that it has the shape above; its
order is the order the draw sees, and a kind added to it changes what a seed
draws.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from rumor.experiments.faults import FaultKind
from rumor.node.replication.engine.canaries import Canary

FAULTS_FROM_MS = 300
FAULTS_UNTIL_MS = 3200
SNAPJOIN_FROM_MS = 1700  # the cluster holds enough records to serve a snapshot by then
SNAPJOIN_UNTIL_MS = 3000
WRITES_DURING_SNAPJOIN = 12
STALE_RESTORE_FROM_MS = 3300  # a stale backup is restored near the end of the writes
# A ``return`` fault's downtime: past the fuzz's member timeout (execution.quick_protocol)
# with its suspicion and a probe round or two, so the node is retired before it is back.
DOWN_PAST_TIMEOUT_MS = 7000


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
class SessionPlan:
    """One session client's calls, in order, from ``start_ms`` (see ``session_clients``)."""

    client: int
    start_ms: int
    calls: tuple[tuple[int, int, str], ...]  # (slot, key, op): op read, put or delete


@dataclass(frozen=True, slots=True)
class FaultPlan:
    kind: FaultKind
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
    sessions: tuple[SessionPlan, ...] = ()

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
            sessions=tuple(
                replace(plan, calls=tuple(c for c in plan.calls if c[0] not in dropped))
                for plan in self.sessions
            ),
        )

    # ---- files ------------------------------------------------------------------

    def to_json(self) -> str:
        data = asdict(self)
        data["canaries"] = [canary.value for canary in self.canaries]
        if not self.sessions:
            del data["sessions"]  # a schedule without session clients reads as it always did
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
            faults=tuple(
                FaultPlan(**{**f, "kind": FaultKind.parse(f["kind"]), "slots": tuple(f["slots"])})
                for f in data["faults"]
            ),
            sessions=tuple(
                SessionPlan(s["client"], s["start_ms"], tuple(tuple(c) for c in s["calls"]))
                for s in data.get("sessions", [])
            ),
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
        ends = [fault.end_ms for fault in self.faults if fault.kind is FaultKind.FORGE]
        return max(ends) if ends else None


# ---- drawing each kind of fault -------------------------------------------------------


@dataclass(slots=True)
class FaultDrawing:
    """Faults being drawn: the draws every fault makes, then its kind's own (``DRAWS``).

    Faults that start new processes take slots from ``next_slot`` up; a
    ``snapjoin`` adds its burst of writes to ``burst``.
    """

    rng: random.Random
    slots: list[int]
    keys: int
    next_slot: int
    kinds: tuple[FaultKind, ...]  # what a fault may be, in ``DRAWS``'s order
    burst: list[WritePlan] = field(default_factory=list)

    def fault(self) -> FaultPlan:
        rng = self.rng
        kind = rng.choice(self.kinds)
        at = rng.randint(FAULTS_FROM_MS, FAULTS_UNTIL_MS)
        duration = rng.randint(200, 1200)
        victim = rng.choice(self.slots)
        other = rng.choice([s for s in self.slots if s != victim])
        return DRAWS[kind](self, FaultPlan(kind, at, duration, (victim,)), other)

    def new_slots(self, count: int) -> list[int]:
        taken = list(range(self.next_slot, self.next_slot + count))
        self.next_slot += count
        return taken


def _partition(d: FaultDrawing, plan: FaultPlan, other: int) -> FaultPlan:
    side = d.rng.sample(d.slots, d.rng.randint(1, len(d.slots) // 2))
    return replace(plan, slots=tuple(sorted(side)), style=d.rng.choice(("drop", "refuse")))


def _block(d: FaultDrawing, plan: FaultPlan, other: int) -> FaultPlan:
    victim = plan.slots[0]
    others = [s for s in d.slots if s != victim]
    return replace(
        plan, slots=(victim, *sorted(d.rng.sample(others, d.rng.randint(1, len(others)))))
    )


def _loss(d: FaultDrawing, plan: FaultPlan, other: int) -> FaultPlan:
    return replace(plan, value=d.rng.choice((0.2, 0.5, 0.9)))


def _delay(d: FaultDrawing, plan: FaultPlan, other: int) -> FaultPlan:
    return replace(plan, value=float(d.rng.choice((30, 150, 600))))


def _skew(d: FaultDrawing, plan: FaultPlan, other: int) -> FaultPlan:
    return replace(plan, value=float(d.rng.choice((-1, 1)) * d.rng.choice((100, 400, 1500))))


def _crash(d: FaultDrawing, plan: FaultPlan, other: int) -> FaultPlan:
    return replace(plan, style=d.rng.choice(("keep", "keep", "wipe")))


def _as_drawn(d: FaultDrawing, plan: FaultPlan, other: int) -> FaultPlan:
    return plan


def _join(d: FaultDrawing, plan: FaultPlan, other: int) -> FaultPlan:
    # A joiner names two seeds, as a deployment does: one gone for good (removed)
    # must not leave it alone for ever.
    style = d.rng.choice(("", "late"))
    if style == "late":
        return replace(plan, slots=(*d.new_slots(2), plan.slots[0]), style=style)
    return replace(plan, slots=(*d.new_slots(1), plan.slots[0], other), style=style)


def _remove(d: FaultDrawing, plan: FaultPlan, other: int) -> FaultPlan:
    # Never the founding node: every node names it as a seed, some only it, and
    # removing a cluster's only seed for ever is an operator's mistake that
    # leaves nodes that cannot find each other again, not a protocol fault.
    victim = d.rng.choice(d.slots[1:]) if len(d.slots) > 1 else plan.slots[0]
    other = d.rng.choice([s for s in d.slots if s != victim])
    return replace(plan, slots=(victim, other), style=d.rng.choice(("dead", "live")))


def _duplicate(d: FaultDrawing, plan: FaultPlan, other: int) -> FaultPlan:
    return replace(plan, slots=(plan.slots[0], *d.new_slots(1)))


def _snapjoin(d: FaultDrawing, plan: FaultPlan, other: int) -> FaultPlan:
    at = d.rng.randint(SNAPJOIN_FROM_MS, SNAPJOIN_UNTIL_MS)
    slots = (*d.new_slots(1), plan.slots[0], other)
    d.burst += _deletes_during(d.rng, at, plan.duration_ms, d.slots, d.keys)
    return replace(plan, at_ms=at, slots=slots)


def _stale_backup(d: FaultDrawing, plan: FaultPlan, other: int) -> FaultPlan:
    # Never the founding node: the simulator starts it without seeds, and a restored
    # backup started without seeds at an address the rest of the cluster still names
    # as a seed is the misuse the operations guide forbids (restore only when no node
    # of the old cluster runs), not something the node can refuse.
    # Restored late, when most writes are made: what the backup misses is then not
    # overwritten again, and a purged delete it holds the value of would show.
    victim = d.rng.choice(d.slots[1:]) if len(d.slots) > 1 else plan.slots[0]
    restored = d.rng.randint(max(plan.at_ms + 300, STALE_RESTORE_FROM_MS),
                             max(plan.at_ms + 300, STALE_RESTORE_FROM_MS) + 500)  # fmt: skip
    return replace(plan, slots=(victim,), duration_ms=restored - plan.at_ms)


def _return(d: FaultDrawing, plan: FaultPlan, other: int) -> FaultPlan:
    return replace(plan, duration_ms=DOWN_PAST_TIMEOUT_MS)


def _forge(d: FaultDrawing, plan: FaultPlan, other: int) -> FaultPlan:
    origin = d.rng.choice(d.slots)
    return replace(
        plan, slots=(plan.slots[0], other, origin), style=d.rng.choice(("push", "exchange"))
    )


#: Per kind a schedule draws, what else it draws; the order is the order ``choice`` sees.
DRAWS: dict[FaultKind, Callable[[FaultDrawing, FaultPlan, int], FaultPlan]] = {
    FaultKind.PARTITION: _partition,
    FaultKind.BLOCK: _block,
    FaultKind.LOSS: _loss,
    FaultKind.DELAY: _delay,
    FaultKind.SKEW: _skew,
    FaultKind.CRASH: _crash,
    FaultKind.POWER: _as_drawn,
    FaultKind.JOIN: _join,
    FaultKind.RESTORE: _as_drawn,
    FaultKind.REMOVE: _remove,
    FaultKind.DUPLICATE: _duplicate,
    FaultKind.FORGE: _forge,
    FaultKind.SNAPJOIN: _snapjoin,
    FaultKind.STALE_BACKUP: _stale_backup,
    FaultKind.REPLACE: _as_drawn,
    FaultKind.RETURN: _return,
}


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
