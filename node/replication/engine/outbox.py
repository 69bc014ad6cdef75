"""What the engine hands its driver, gathered between two ``ready()`` calls.

The components never talk to the network or the disk: they queue what must
happen here, through the engine's services. ``send`` queues a request with a
fresh message id and remembers the continuation its answer (or failure) goes
to; ``reply`` queues the answer to a peer's request under its token;
``want_durable`` raises the write ticket to sync; ``notice`` queues what the
driver logs or acts on; ``fetch_snapshot`` asks for a copy. ``take`` hands
all of it out once, as one ``Ready``, and starts a new one.

Every message leaves with an envelope (``Envelopes.make``, given once the
engine has made its ``Envelopes``): what this node says of itself, built when
the message is queued. ``send``, ``reply``, ``want_durable`` and ``notice`` are
the outputs ``Services`` hands every component.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from rumor.node.core.membership import Member
from rumor.node.replication.engine.components import Continuation
from rumor.node.replication.engine.messages import (
    Envelope,
    Notice,
    NoticeKind,
    Now,
    Outbound,
    Ready,
    Refusal,
    Reply,
    ReplyBody,
    Request,
    SnapshotFetch,
)


class MakeEnvelope(Protocol):
    """How a message's envelope is made (``Envelopes.make``)."""

    def __call__(
        self, body: Request | ReplyBody | Refusal, *, all_members: bool, to: int
    ) -> Envelope: ...


class Outbox:
    def __init__(self, rpc_timeout_ms: int) -> None:
        self.make_envelope: MakeEnvelope | None = None  # Envelopes.make, set by the engine
        self._rpc_timeout_ms = rpc_timeout_ms
        self._out = Ready()
        self._expect: dict[int, Continuation] = {}
        self._next_message_id = 0
        self._sync_ticket = 0

    def send(
        self,
        member: Member,
        body: Request,
        then: Continuation,
        now: Now | None = None,
        *,
        timeout_ms: int | None = None,
        all_members: bool = False,
    ) -> int:
        """Queue a request to ``member`` (id 0: a seed known by address only); its answer
        or failure goes to ``then`` (``now`` is the components' ``Send`` signature's).
        Returns the message id."""
        self._next_message_id += 1
        message_id = self._next_message_id
        self._expect[message_id] = then
        self._out.messages.append(
            Outbound(
                message_id,
                member.id,
                member.address,
                self._envelope(body, all_members=all_members, to=member.id),
                body,
                self._rpc_timeout_ms if timeout_ms is None else timeout_ms,
            )
        )
        return message_id

    def _envelope(
        self, body: Request | ReplyBody | Refusal, *, all_members: bool, to: int
    ) -> Envelope:
        assert self.make_envelope is not None, "the engine gives Envelopes.make first"
        return self.make_envelope(body, all_members=all_members, to=to)

    def answered(self, message_id: int) -> Continuation | None:
        """The continuation waiting for ``message_id``, once (None: it was reported failed
        already, or never sent)."""
        return self._expect.pop(message_id, None)

    def reply(
        self, token: int, body: ReplyBody | Refusal, *, to: int, all_members: bool = False
    ) -> None:
        envelope = self._envelope(body, all_members=all_members, to=to)
        self._out.replies.append(Reply(token, envelope, body))

    def want_durable(self, ticket: int) -> None:
        self._sync_ticket = max(self._sync_ticket, ticket)

    def notice(self, kind: NoticeKind, message: str = "", **fields: object) -> None:
        self._out.notices.append(Notice(kind, message, fields))

    def fetch_snapshot(self, peer: Member) -> None:
        self._out.snapshot_fetch = SnapshotFetch(peer.id, peer.address)

    def take(self, is_durable: Callable[[int], bool], next_tick_ms: int) -> Ready:
        """Everything queued since the last call, once; the ticket to sync is left out
        when it is durable already."""
        out, self._out = self._out, Ready()
        out.sync_ticket = max(self._sync_ticket, out.sync_ticket)
        self._sync_ticket = 0
        if out.sync_ticket and is_durable(out.sync_ticket):
            out.sync_ticket = 0
        out.next_tick_ms = next_tick_ms
        return out
