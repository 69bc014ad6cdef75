"""The shape every engine component shares, and the services it is built from.

Rules:
- A component holds one concept of the protocol (push, anti-entropy, SWIM,
  joining, audits, bootstrap by snapshot) and implements ``Component``: its
  timers (``due_ms``, ``tick``) and the one kind of request it answers
  (``answer``). ``SweepRounds`` keeps only the timer half: it answers nothing.
- A component is built from ``Services`` — the replica, the member table,
  the knobs, the RNG, the counters, and the engine's outputs (``send``,
  ``reply``, ``want_durable``, ``notice``) — never from the Engine itself.
- A component never calls a sibling. Where one's decision starts another's
  work (a join starts a synchronisation, a member coming back is caught up
  with), it calls a hook it was given at construction, and the engine routes it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from rumor.node.core.membership import Member
from rumor.node.replication.engine.canaries import Canary
from rumor.node.replication.engine.messages import (
    Failed,
    NoticeKind,
    Now,
    Refusal,
    ReplyBody,
    Request,
    Response,
)
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.replica.delta import Coverage

if TYPE_CHECKING:
    from rumor.node.replication.engine.membership import Membership
    from rumor.node.replication.replica.replica import Replica

IDLE_MS = 1 << 62  # "no timer": new work comes with a step, a proposal or an advance

RequestT_contra = TypeVar("RequestT_contra", contravariant=True)
Continuation = Callable[[Response | Failed, Now], None]


class Component(Protocol[RequestT_contra]):
    """One concept of the protocol, with its own timers and the requests it answers."""

    def due_ms(self) -> int:
        """When ``tick`` has work next (monotonic ms; ``IDLE_MS``: nothing pending)."""
        ...

    def tick(self, now: Now) -> None:
        """Let time pass: run what is due."""
        ...

    def answer(self, token: int, sender: int, request: RequestT_contra, now: Now) -> None:
        """Answer a peer's request, now or later, through ``Services.reply`` under ``token``."""
        ...


@dataclass(slots=True)
class ReplicationStats:
    """Counters the components keep; metrics and ``rumor admin status`` read them."""

    pushes_sent: int = 0
    pushes_failed: int = 0
    push_bytes: int = 0
    push_bytes_received: int = 0
    records_applied_remote: int = 0
    exchanges: int = 0
    exchange_bytes: int = 0
    last_exchange_bytes: int = 0
    audit_rounds: int = 0
    malformed_messages: int = 0
    claims_clamped: int = 0
    incompatible_messages: int = 0  # refused, or answers rejected, for their protocol version
    # Probes answered under another id than the probed one (a new process at the old
    # address): not a sign of life of the probed member.
    probe_mismatches: int = 0
    # Requests naming another node as their recipient (the sender's table is stale).
    misaddressed: int = 0
    calls_failed: int = 0


class Send(Protocol):
    def __call__(
        self,
        member: Member,
        body: Request,
        then: Continuation,
        now: Now,
        *,
        timeout_ms: int | None = None,
        all_members: bool = False,
    ) -> int:
        """Queue a request to ``member``; ``then`` gets its answer or its failure."""
        ...


class ReplyTo(Protocol):
    def __call__(
        self, token: int, body: ReplyBody | Refusal, *, to: int, all_members: bool = False
    ) -> None:
        """Queue the answer to the request given under ``token``."""
        ...


class Notify(Protocol):
    def __call__(self, kind: NoticeKind, message: str = "", **fields: object) -> None:
        """Queue a notice for the driver to log or act on."""
        ...


@dataclass(frozen=True, slots=True)
class Services:
    """What a component may use: the node's state, its knobs, and the engine's outputs."""

    replica: Replica
    membership: Membership
    config: ProtocolConfig
    rng: random.Random
    stats: ReplicationStats
    canaries: frozenset[Canary]
    send: Send
    reply: ReplyTo
    want_durable: Callable[[int], None]  # make writes up to this ticket durable
    notice: Notify
    serving: Callable[[], bool]  # this node serves (it joined, or serves alone)
    become_serving: Callable[[str], None]
    clamp_coverage: Callable[[Iterable[Coverage]], list[Coverage]]  # see Envelopes
    # The time records are judged by (deferral, HLC merges): the peers' while fenced.
    time_for_records: Callable[[Now], Now]
    # Whether a member takes records now (it did not say its disk is full).
    takes_records: Callable[[int], bool]

    @property
    def node_id(self) -> int:
        return self.replica.node_id
