"""Bootstrap by snapshot in the engine: who asks, who admits, and what happens next.

Theory of operation. The joiner: a node that has never served and
``may_bootstrap_by_snapshot`` (it holds nothing, claims nothing) answers the
first JoinReply not with an anti-entropy session but with ``Admit`` to the
peer that answered. The peer admits it through ``SnapshotAdmission`` (a
counted member, at zero: its GC waits for the joiner) and says yes only
once that member entry is durable (a ticket through ``want_durable``). The
engine then hands the driver ``Ready.snapshot_fetch``; the driver downloads
and verifies the copy and reports ``Done.snapshot_fetched`` (the engine
tells it to stop and install: ``NoticeKind.INSTALL_SNAPSHOT``) or
``Done.snapshot_failed`` (the engine falls back to anti-entropy with the
same peer). While the copy travels the joiner runs no anti-entropy, audit
or purge of its own, and it takes no pushes, not even those carrying
coverage: whatever it held before the install would be replaced by the copy,
and the watermarks it advertised meanwhile would let its peers' GC purge
tombstones the copy lacks.

The serving side frees an admission slot ``snapshot_hold_ms`` after it
admitted the joiner: by then the copy was taken (the driver takes it when
the stream starts) and, if the joiner is gone, its member entry times out
like any other.

Rules:
- Only a node that has never served and holds nothing asks (``tried`` once
  per process: after a failed try it catches up by anti-entropy).
- The peer admits only while it serves, only when it holds at least
  ``snapshot_min_records`` (fewer come quicker by anti-entropy), only counted
  members, and at most ``MAX_SERVED_AT_ONCE`` at a time.
- The yes goes out only after the admission is durable.
- A copy that arrives when the joiner holds data of its own after all (it
  became ready meanwhile and took writes) is not installed: anti-entropy.
"""

from __future__ import annotations

from collections.abc import Callable

from rumor.node.core.membership import Member
from rumor.node.replication.engine.canaries import Canary
from rumor.node.replication.engine.components import IDLE_MS, Services
from rumor.node.replication.engine.messages import (
    Admit,
    AdmitReply,
    Failed,
    NoticeKind,
    Now,
    Refusal,
    RefusalCode,
    Response,
)
from rumor.node.replication.replica.snapshot_install import (
    SnapshotAdmission,
    may_bootstrap_by_snapshot,
)


class SnapshotJoin:
    def __init__(
        self,
        services: Services,
        *,
        fetch: Callable[[Member], None],
        stop_for_install: Callable[[], None],
        fall_back_to: Callable[[Member, Now], None],
    ) -> None:
        self.services = services
        self._fetch = fetch  # hand the driver ``Ready.snapshot_fetch`` from this member
        self._stop_for_install = stop_for_install
        # No copy after all: catch up through anti-entropy with this member instead.
        self._fall_back_to = fall_back_to
        self.admission = SnapshotAdmission()
        self.tried = False
        self.fetching = 0  # the peer a copy is being fetched from (0: none)
        self._hold_until: dict[int, int] = {}  # admitted joiner -> when its slot frees
        self._waiting: list[tuple[int, int, int]] = []  # (ticket, token, joiner)
        self._unadmitted: set[int] = set()  # Canary.SNAPSHOT_UNADMITTED: GC skips them

    # ---- the joiner ---------------------------------------------------------

    def wants_snapshot(self) -> bool:
        services = self.services
        return (
            services.config.snapshot_bootstrap
            and not services.serving()
            and not self.tried
            and may_bootstrap_by_snapshot(services.replica.state)
        )

    def ask(self, peer: Member, now: Now) -> None:
        """Ask ``peer`` (it answered this node's Join) to admit it for a snapshot."""
        services = self.services
        self.tried = True
        self.fetching = peer.id
        services.send(
            peer,
            Admit(),
            lambda answer, at: self._admitted(peer, answer, at),
            now,
            timeout_ms=services.config.join_call_timeout_ms,
            all_members=True,
        )

    def _admitted(self, peer: Member, answer: Response | Failed, now: Now) -> None:
        services = self.services
        if isinstance(answer, Failed):
            self.fall_back(f"admission failed: {answer.cause.value}", now)
            return
        if services.serving():
            # A synchronisation already under way completed meanwhile: this node serves,
            # and may have taken writes that installing a copy would drop.
            self.fall_back("serving already", now)
            return
        body = answer.body
        if not isinstance(body, AdmitReply) or not body.admitted:
            reason = body.reason if isinstance(body, AdmitReply) else "unexpected answer"
            self.fall_back(f"not admitted: {reason}", now)
            return
        self._fetch(peer)
        services.notice(
            NoticeKind.SNAPSHOT, "admitted: fetching a snapshot", peer=f"{peer.id:016x}"
        )

    def fetched(self, now: Now) -> None:
        """The driver downloaded and verified the copy: stop and install it."""
        if not self.fetching:
            return
        if not may_bootstrap_by_snapshot(self.services.replica.state):
            # It took writes or records while the copy travelled (it became ready through
            # a peer's exchange): installing would throw them away, acknowledged or not.
            self.fall_back("this node holds data of its own now: it keeps it", now)
            return
        if self.services.serving():
            self.fall_back("serving already: the copy would drop what this node took", now)
            return
        self.services.notice(
            NoticeKind.INSTALL_SNAPSHOT,
            "snapshot downloaded and verified: stopping to install it",
            peer=f"{self.fetching:016x}",
        )
        self._stop_for_install()

    def fall_back(self, reason: str, now: Now) -> None:
        """No snapshot after all: catch up through anti-entropy with the same peer."""
        services = self.services
        peer = services.membership.members.get(self.fetching)
        self.fetching = 0
        services.notice(NoticeKind.SNAPSHOT, f"falling back to anti-entropy: {reason}")
        if peer is not None:
            self._fall_back_to(peer, now)

    # ---- the serving peer -----------------------------------------------------

    def answer(self, token: int, sender: int, admit: Admit, now: Now) -> None:
        services = self.services
        if not services.serving():
            services.reply(token, AdmitReply(False, "not serving yet"), to=sender)
            return
        state = services.replica.state
        if state.records_held + state.tombstones_held < services.config.snapshot_min_records:
            services.reply(
                token, AdmitReply(False, "few records: anti-entropy is quicker"), to=sender
            )
            return
        membership = services.membership
        if Canary.SNAPSHOT_UNADMITTED in services.canaries:
            # Before the fix: the copy was served to a joiner the GC did not wait for.
            self.admission.serving.add(sender)
            self._unadmitted.add(sender)
        elif not self.admission.admit(sender, membership.vectors, set(membership.counted())):
            services.reply(token, AdmitReply(False, "busy or not a member"), to=sender)
            return
        self._hold_until[sender] = now.mono_ms + services.config.snapshot_hold_ms
        # The joiner's member entry is written (merged from the envelope); the yes
        # waits for a WAL sync that covers it.
        ticket = services.replica.issue_ticket()
        if services.replica.is_durable(ticket):
            services.reply(token, AdmitReply(True), to=sender, all_members=True)
            return
        self._waiting.append((ticket, token, sender))
        services.want_durable(ticket)

    def synced(self) -> None:
        services = self.services
        still: list[tuple[int, int, int]] = []
        for ticket, token, joiner in self._waiting:
            if services.replica.is_durable(ticket):
                services.reply(token, AdmitReply(True), to=joiner, all_members=True)
            else:
                still.append((ticket, token, joiner))
        self._waiting = still

    def refuse_waiting(self) -> None:
        for _, token, joiner in self._waiting:
            self.services.reply(
                token, Refusal(RefusalCode.UNAVAILABLE, "this node is stopping"), to=joiner
            )
        self._waiting = []

    def due_ms(self) -> int:
        """No timer of its own: slots free at the next tick, and nothing waits on them."""
        return IDLE_MS

    def tick(self, now: Now) -> None:
        for joiner, until in list(self._hold_until.items()):
            if now.mono_ms >= until:
                del self._hold_until[joiner]
                self.admission.finished(joiner)
                self._unadmitted.discard(joiner)

    def counted_by_gc(self, members: list[int]) -> list[int]:
        """The members GC waits for: every counted one (but for the canary's joiners)."""
        if not self._unadmitted:
            return members
        return [member for member in members if member not in self._unadmitted]

    def may_serve(self, joiner: int) -> bool:
        """The driver asks before it streams a copy to ``joiner``."""
        return self.admission.may_serve(joiner)
