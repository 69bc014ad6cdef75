"""The simulated network: calls between addresses, their replies and their failures.

A process hands the network each ``Outbound`` the engine emitted; the network
delivers it to whatever process listens on the address, as ``Inbound`` with a
fresh token, after one latency draw. The answer (a ``Reply`` under that token)
travels back after another draw and reaches the caller as ``Response``, or as
a failure (``FailureCause`` of the refusal) if it was a ``Refusal``. Values
are passed through unchanged: the simulator never rebuilds a message.

Failures, as a gRPC client sees them:

- nothing listens on the address (never started, crashed): ``UNREACHABLE``
  after one draw, as a refused connection;
- a link blocked in ``refuse`` style (a partition with ICMP rejects):
  ``UNREACHABLE`` after one draw; in ``drop`` style (packets dropped): the
  call hangs until its ``timeout_ms``, then ``DEADLINE``;
- a request or reply lost, or a reply later than the deadline: ``DEADLINE``;
- the callee crashed holding the request: ``DEADLINE``.

A call is settled once: a reply after its deadline is dropped. Deadlines cost
nothing on the common path: a failure is scheduled only once a message was
lost, blocked, late or stranded, so the network does O(1) work per message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from rumor.experiments.sim.loop import EventLoop
from rumor.node.replication.engine.messages import (
    Envelope,
    ExchangeReply,
    FailureCause,
    Outbound,
    Push,
    Refusal,
    RefusalCode,
    Reply,
    ReplyBody,
    Request,
)
from rumor.node.replication.replica.delta import Coverage

REFUSAL_CAUSES = {
    RefusalCode.REMOVED: FailureCause.REMOVED,
    RefusalCode.DUPLICATE_ID: FailureCause.DUPLICATE_ID,
    RefusalCode.MALFORMED: FailureCause.MALFORMED,
    RefusalCode.UNAVAILABLE: FailureCause.REFUSED,
}
DROP = "drop"  # blocked packets vanish: the caller waits for its deadline
REFUSE = "refuse"  # blocked connections are rejected: the caller learns at once


class Endpoint(Protocol):
    """What the network needs of a process."""

    address: str
    running: bool

    def receive_request(self, token: int, envelope: Envelope, body: Request) -> None: ...

    def receive_response(self, message_id: int, envelope: Envelope, body: ReplyBody) -> None: ...

    def call_failed(self, message_id: int, cause: FailureCause) -> None: ...


@dataclass(slots=True)
class _Call:
    caller: Endpoint | None  # None: a forged request, whose answer nobody reads
    message_id: int
    deadline_ms: float
    settled: bool = False


@dataclass(slots=True)
class NetworkStats:
    requests: int = 0
    replies: int = 0
    lost: int = 0
    failed: int = 0
    records_pushed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def messages(self) -> int:
        return self.requests + self.replies


class Network:
    def __init__(
        self, loop: EventLoop, draw_latency: Callable[[], float], roll: Callable[[], float]
    ):
        self.loop = loop
        self.draw_latency = draw_latency
        self.roll = roll  # uniform [0, 1): loss decisions
        self.loss = 0.0
        self.listeners: dict[str, Endpoint] = {}
        self.blocked: dict[tuple[str, str], str] = {}  # (from, to) -> DROP | REFUSE
        self.extra_delay_ms: dict[str, float] = {}  # per address, on everything it sends
        self.forged_exchange_replies: dict[str, Coverage] = {}  # caller address -> claim
        self.stats = NetworkStats()
        self._next_token = 0
        self._held: dict[int, _Call] = {}  # token -> the call awaiting its answer
        self._held_by: dict[int, set[int]] = {}  # id(endpoint) -> tokens it holds

    # ---- addresses --------------------------------------------------------------

    def listen(self, endpoint: Endpoint) -> None:
        self.listeners[endpoint.address] = endpoint

    def hang_up(self, endpoint: Endpoint) -> None:
        """A process went away: what it was asked is never answered."""
        if self.listeners.get(endpoint.address) is endpoint:
            del self.listeners[endpoint.address]
        for token in self._held_by.pop(id(endpoint), ()):
            call = self._held.pop(token, None)
            if call is not None:
                self._fail_at(call, call.deadline_ms, FailureCause.DEADLINE)

    # ---- faults -------------------------------------------------------------------

    def block(self, source: str, target: str, style: str = DROP) -> None:
        self.blocked[(source, target)] = style

    def unblock(self, source: str, target: str) -> None:
        self.blocked.pop((source, target), None)

    def heal(self) -> None:
        self.blocked.clear()
        self.extra_delay_ms.clear()
        self.forged_exchange_replies.clear()
        self.loss = 0.0

    # ---- calls --------------------------------------------------------------------

    def call(self, caller: Endpoint | None, outbound: Outbound, source: str = "") -> None:
        """Send a request; ``caller`` None is a forged one injected by the fault plan."""
        stats = self.stats
        stats.requests += 1
        body = outbound.body
        kind = type(body).__name__
        stats.by_kind[kind] = stats.by_kind.get(kind, 0) + 1
        if isinstance(body, Push):
            stats.records_pushed += len(body.records)
        now = self.loop.now_ms
        call = _Call(caller, outbound.message_id, now + outbound.timeout_ms)
        source = caller.address if caller is not None else source
        style = self.blocked.get((source, outbound.address)) if self.blocked else None
        if style is not None:
            self._blocked(call, style)
            return
        if self.loss and self.roll() < self.loss:
            stats.lost += 1
            self._fail_at(call, call.deadline_ms, FailureCause.DEADLINE)
            return
        delay = self.draw_latency() + self.extra_delay_ms.get(source, 0.0)
        address = outbound.address
        envelope = outbound.envelope
        self.loop.at(now + delay, lambda: self._arrive(call, address, envelope, body))

    def _arrive(self, call: _Call, address: str, envelope: Envelope, body: Request) -> None:
        target = self.listeners.get(address)
        if target is None or not target.running:
            self._fail_at(call, self.loop.now_ms + self.draw_latency(), FailureCause.UNREACHABLE)
            return
        self._next_token += 1
        token = self._next_token
        self._held[token] = call
        self._held_by.setdefault(id(target), set()).add(token)
        target.receive_request(token, envelope, body)
        if token in self._held:
            # As a real RPC's deadline: a request the callee holds unanswered (a Push
            # awaiting its write, a crash) times out; one answered at once costs no timer.
            self._fail_at(call, call.deadline_ms, FailureCause.DEADLINE)

    def answer(self, responder: Endpoint, reply: Reply) -> None:
        """A process answered the request it was given under ``reply.token``."""
        call = self._held.pop(reply.token, None)
        if call is None:
            return
        held = self._held_by.get(id(responder))
        if held is not None:
            held.discard(reply.token)
        stats = self.stats
        stats.replies += 1
        caller = call.caller
        if caller is None or call.settled:
            return
        style = self.blocked.get((responder.address, caller.address)) if self.blocked else None
        if style is not None:
            self._blocked(call, style)
            return
        if self.loss and self.roll() < self.loss:
            stats.lost += 1
            self._fail_at(call, call.deadline_ms, FailureCause.DEADLINE)
            return
        now = self.loop.now_ms
        arrival = now + self.draw_latency() + self.extra_delay_ms.get(responder.address, 0.0)
        if arrival > call.deadline_ms:
            self._fail_at(call, call.deadline_ms, FailureCause.DEADLINE)
            return
        self.loop.at(arrival, lambda: self._respond(call, reply))

    def _respond(self, call: _Call, reply: Reply) -> None:
        caller = call.caller
        if call.settled or caller is None:
            return
        call.settled = True
        if not caller.running:
            return
        body = reply.body
        if isinstance(body, Refusal):
            self.stats.failed += 1
            caller.call_failed(call.message_id, REFUSAL_CAUSES[body.code])
            return
        if isinstance(body, ExchangeReply) and self.forged_exchange_replies:
            claim = self.forged_exchange_replies.pop(caller.address, None)
            if claim is not None:
                body = ExchangeReply(body.records, (*body.coverage, claim))
        caller.receive_response(call.message_id, reply.envelope, body)

    def _blocked(self, call: _Call, style: str) -> None:
        self.stats.lost += 1
        if style == REFUSE:
            at = self.loop.now_ms + self.draw_latency()
            self._fail_at(call, min(at, call.deadline_ms), FailureCause.UNREACHABLE)
        else:
            self._fail_at(call, call.deadline_ms, FailureCause.DEADLINE)

    def _fail_at(self, call: _Call, at_ms: float, cause: FailureCause) -> None:
        def fail() -> None:
            caller = call.caller
            if call.settled or caller is None:
                return
            call.settled = True
            self.stats.failed += 1
            if caller.running:
                caller.call_failed(call.message_id, cause)

        self.loop.at(at_ms, fail)
