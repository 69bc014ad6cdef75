"""What an experiment saw: the history the checkers judge.

Times: ``*_ns`` are the harness host's monotonic clock (every node runs on the
same host, so Watch's ``applied_monotonic_ns`` is comparable with them even
when a node's wall clock is skewed on purpose); ``*_ms`` are wall clock.
A version is (hlc, origin); greater wins.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

Version = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Ack:
    """An acknowledged write: a put (``deleted`` False) or a delete, as the node answered it."""

    op: int
    node: str
    key: str
    deleted: bool
    value: str | None
    expiration: int | None  # absolute seconds
    hlc: int
    origin: int
    seq: int
    started_ns: int
    acked_ns: int

    @property
    def version(self) -> Version:
        return (self.hlc, self.origin)


@dataclass(frozen=True, slots=True)
class Attempt:
    """A write that failed or timed out: it may or may not have happened."""

    op: int
    node: str
    key: str
    deleted: bool
    error: str
    started_ns: int


@dataclass(frozen=True, slots=True)
class Applied:
    """One Watch event: ``node`` applied this version of ``key``."""

    node: str
    key: str
    hlc: int
    origin: int
    seq: int
    deleted: bool
    expiration: int | None
    applied_ns: int

    @property
    def version(self) -> Version:
        return (self.hlc, self.origin)


@dataclass(frozen=True, slots=True)
class Held:
    """After the run: the record ``node`` holds for ``key`` (tombstones included)."""

    node: str
    key: str
    hlc: int
    origin: int
    seq: int
    deleted: bool
    expiration: int | None

    @property
    def version(self) -> Version:
        return (self.hlc, self.origin)


@dataclass(frozen=True, slots=True)
class MovingCall:
    """One call of a moving client: a client that picks a random node for every call,
    with a session (``session``: every call after the session's token) or without.

    A read that found a value names the op that wrote it (``read_op``, from the
    value); a write's version is (hlc, origin), (0, 0) when not acknowledged.
    A moving client's acknowledged writes are also in ``History.acks``, the
    others in ``History.attempts``.
    """

    client: int
    session: bool
    op: int
    node: str
    kind: str  # read, put or delete
    key: str
    ok: bool  # a read was answered, a write acknowledged
    found: bool
    read_op: int | None
    hlc: int
    origin: int
    started_ns: int
    ended_ns: int
    error: str = ""


@dataclass(frozen=True, slots=True)
class FaultWindow:
    kind: str
    start_ns: int
    end_ns: int
    detail: str = ""


@dataclass(slots=True)
class History:
    nodes: list[str] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    faults: list[FaultWindow] = field(default_factory=list)
    moving: list[MovingCall] = field(default_factory=list)  # in each client's order
    # Per node: the audit digest after the run, and how long after the heal the
    # digests became equal (None: they did not within the bound).
    final_digests: dict[str, int] = field(default_factory=dict)
    started_ns: int = 0
    healed_ns: int = 0
    converged_ns: int | None = None
    end_wall_s: float = 0.0  # wall clock when the final state was read (for expirations)

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> History:
        raw: dict[str, Any] = json.loads(path.read_text())
        return cls(
            nodes=raw["nodes"],
            acks=[Ack(**a) for a in raw["acks"]],
            attempts=[Attempt(**a) for a in raw["attempts"]],
            applied=[Applied(**a) for a in raw["applied"]],
            held=[Held(**h) for h in raw["held"]],
            faults=[FaultWindow(**f) for f in raw["faults"]],
            moving=[MovingCall(**m) for m in raw.get("moving", [])],
            final_digests=raw["final_digests"],
            started_ns=raw["started_ns"],
            healed_ns=raw["healed_ns"],
            converged_ns=raw["converged_ns"],
            end_wall_s=raw["end_wall_s"],
        )


def run_origin_ns(history: History) -> int:
    """Time zero of the run's plots and relative times: ``started_ns``, else the first event."""
    if history.started_ns:
        return history.started_ns
    times = [ack.started_ns for ack in history.acks]
    times += [attempt.started_ns for attempt in history.attempts]
    times += [event.applied_ns for event in history.applied]
    times += [fault.start_ns for fault in history.faults]
    return min(times, default=0)
