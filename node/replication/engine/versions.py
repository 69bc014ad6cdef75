"""Versions: which peers this node replicates with, and what it uses with each.

Every Join and Exchange, request and answer, says what its sender speaks
(``Envelope.protocol``, filled in by ``Envelopes.make`` for ``MEETINGS``); one
that says nothing comes from a release before versions were exchanged
(``UNVERSIONED``). ``screen`` judges each message before anything of it is
taken in (its member updates, its HLC, its watermarks):

- A Join or Exchange is judged by what it says (``negotiate`` in
  ``rumor.node.core.compatibility``). Compatible: the agreement — the lower
  version, the features both offer — is kept for its sender, and the
  components ask ``offers`` before they use a feature with it. Not: it is
  refused (INCOMPATIBLE, the message naming both versions), and so is every
  later message of that process (its id and boot nonce), since a Push or a
  Ping says no version.
- An answer is judged the same way: an incompatible one fails its call, so a
  peer this node cannot speak to looks down to it (its probes fail) and is
  treated as a down member is (GC waits for it until it is removed).
- A peer met again with another boot nonce (restarted, perhaps upgraded in
  place) is judged afresh by its next Join or Exchange.

Each verdict is told once per peer process: ``PEER_PROTOCOL`` when
compatible, ``INCOMPATIBLE_PEER`` when not, and ``INCOMPATIBLE_PEER`` when a
peer refused this node (``refused_by``).
"""

from __future__ import annotations

from rumor.node.core.compatibility import (
    UNVERSIONED,
    Agreement,
    Feature,
    Incompatible,
    Speaks,
    negotiate,
)
from rumor.node.replication.engine.components import Services
from rumor.node.replication.engine.messages import (
    Envelope,
    Exchange,
    ExchangeReply,
    Join,
    JoinReply,
    NoticeKind,
    Refusal,
    RefusalCode,
    ReplyBody,
    Request,
)

# The messages that say what their sender speaks.
MEETINGS = (Join, JoinReply, Exchange, ExchangeReply)
_TOLD_REFUSALS = 64  # distinct refusals remembered to tell each once (then forgotten)


class Versions:
    def __init__(self, services: Services, speaks: Speaks) -> None:
        self.services = services
        self.speaks = speaks  # what this node speaks
        # Per peer id: the boot nonce last judged and the verdict on that process.
        self._verdicts: dict[int, tuple[int, Agreement | Incompatible]] = {}
        self._told_refusals: set[str] = set()

    def screen(self, envelope: Envelope, body: Request | ReplyBody) -> Refusal | None:
        """None when this node may take ``body`` in; else the refusal to answer with."""
        sender = envelope.sender
        if sender in (0, self.services.node_id):
            return None  # an anonymous seed, or this node itself (one release)
        if isinstance(body, MEETINGS):
            verdict = self._judge(sender, envelope.boot_nonce, envelope.protocol or UNVERSIONED)
        else:
            known = self._verdicts.get(sender)
            if known is None or known[0] != envelope.boot_nonce:
                return None
            verdict = known[1]
        if isinstance(verdict, Incompatible):
            self.services.stats.incompatible_messages += 1
            return Refusal(RefusalCode.INCOMPATIBLE, verdict.message)
        return None

    def _judge(self, sender: int, boot_nonce: int, theirs: Speaks) -> Agreement | Incompatible:
        verdict = negotiate(self.speaks, theirs, peer=f"node {sender:016x}")
        known = self._verdicts.get(sender)
        if known == (boot_nonce, verdict):
            return verdict
        self._verdicts[sender] = (boot_nonce, verdict)
        notice = self.services.notice
        if isinstance(verdict, Incompatible):
            notice(NoticeKind.INCOMPATIBLE_PEER, verdict.message, peer=f"{sender:016x}")
        else:
            notice(
                NoticeKind.PEER_PROTOCOL,
                "",
                peer=f"{sender:016x}",
                protocol=verdict.version,
                release=theirs.release or "not said",
                features=sorted(verdict.features),
            )
        return verdict

    def refused_by(self, detail: str) -> None:
        """A peer refused this node for its version: say so once per distinct message."""
        if detail in self._told_refusals:
            return
        if len(self._told_refusals) >= _TOLD_REFUSALS:
            self._told_refusals.clear()
        self._told_refusals.add(detail)
        self.services.notice(NoticeKind.INCOMPATIBLE_PEER, detail)

    def agreement(self, member_id: int) -> Agreement | None:
        """What this node and ``member_id`` agreed on when they last met (None: not met,
        or they cannot replicate)."""
        known = self._verdicts.get(member_id)
        if known is None or isinstance(known[1], Incompatible):
            return None
        return known[1]

    def offers(self, member_id: int, feature: Feature) -> bool:
        """Whether ``feature`` may be used with ``member_id``: both offered it when they
        last met. A peer not met yet offers nothing."""
        agreement = self.agreement(member_id)
        return agreement is not None and agreement.offers(feature)

    def forget(self, member_id: int) -> None:
        self._verdicts.pop(member_id, None)
