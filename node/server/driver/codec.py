"""Protobuf <-> the engine's plain messages (rumor.node.replication.engine.messages).

The only place that knows both shapes. A message that cannot be converted
(an unknown member state, a field out of range) raises ``MalformedPeerMessage``,
which the service answers with INVALID_ARGUMENT; structural checks of the
records themselves are the replica's (they run before anything is applied).
"""

from __future__ import annotations

from typing import Any

from rumor.node.core import audit
from rumor.node.core.compatibility import Speaks, check_offer
from rumor.node.core.errors import MalformedPeerMessage
from rumor.node.core.membership import Member, State
from rumor.node.replication.engine.messages import (
    Admit,
    AdmitReply,
    Audit,
    AuditReply,
    Envelope,
    Exchange,
    ExchangeReply,
    Join,
    JoinReply,
    Ping,
    PingReply,
    Push,
    PushReply,
    ReplyBody,
    Request,
)
from rumor.node.replication.replica.delta import AuditEntry, Coverage, WireRecord
from rumor.v1 import replication_pb2 as pb

METHOD_OF: dict[type, str] = {
    Push: "Push",
    Exchange: "Exchange",
    Ping: "Ping",
    Join: "Join",
    Audit: "Audit",
    Admit: "Admit",
}
MAX_INCARNATION = 1 << 63
_MEETINGS = ("Join", "Exchange")  # the calls that say what their sender speaks
MAX_REASON_CHARS = 200  # a peer's word on why it refuses writes, as far as it is kept
RESPONSE_CLASS: dict[str, Any] = {
    "Push": pb.PushResponse,
    "Exchange": pb.ExchangeResponse,
    "Ping": pb.PingResponse,
    "Join": pb.JoinResponse,
    "Audit": pb.AuditResponse,
    "Admit": pb.AdmitResponse,
}


def member_to_pb(member: Member) -> pb.Member:
    return pb.Member(
        id=member.id,
        address=member.address,
        incarnation=member.incarnation,
        state=int(member.state),  # type: ignore[arg-type]
        boot_nonce=member.boot_nonce,
        name=member.name,
    )


def member_from_pb(message: pb.Member) -> Member:
    try:
        state = State(message.state)
    except ValueError:
        raise MalformedPeerMessage(f"unknown member state {message.state}") from None
    if message.incarnation >= MAX_INCARNATION:
        # Incarnations grow by one per refutation: this one could not grow (u64 overflow).
        raise MalformedPeerMessage(f"member incarnation {message.incarnation} out of range")
    return Member(
        message.id, message.address, message.incarnation, state, message.boot_nonce, message.name
    )


def record_to_pb(record: WireRecord) -> pb.Record:
    return pb.Record(
        namespace=record.namespace, key=record.key, header=record.header, value=record.value
    )


def record_from_pb(message: pb.Record) -> WireRecord:
    return WireRecord(message.namespace, message.key, message.header, message.value)


def _coverage_to_pb(claim: Coverage) -> pb.Coverage:
    return pb.Coverage(
        origin=claim.origin, base=claim.base, last=claim.last, complete=claim.complete
    )


def _coverage_from_pb(message: pb.Coverage) -> Coverage:
    if message.base > message.last:
        raise MalformedPeerMessage(
            f"a coverage claim's base {message.base} is above its last {message.last}"
        )
    return Coverage(message.origin, message.base, message.last, message.complete)


def envelope_to_pb(envelope: Envelope) -> pb.Envelope:
    return pb.Envelope(
        sender=envelope.sender,
        boot_nonce=envelope.boot_nonce,
        hlc=envelope.hlc,
        members=[member_to_pb(m) for m in envelope.members],
        watermarks=envelope.watermarks,
        address=envelope.address,
        name=envelope.name,
        high_seqs=envelope.high_seqs,
        issued_seq=envelope.issued_seq,
        refuses_writes=envelope.refuses_writes,
        recipient=envelope.recipient,
        away=envelope.away,
    )


def protocol_to_pb(speaks: Speaks | None) -> pb.ProtocolOffer | None:
    if speaks is None:
        return None
    return pb.ProtocolOffer(
        version=speaks.version,
        oldest=speaks.oldest,
        features=sorted(speaks.features),
        release=speaks.release,
    )


def protocol_from_pb(message: Any) -> Speaks | None:
    """What a Join or Exchange (request or answer) says its sender speaks; None when
    it says nothing (a release from before versions were exchanged: the engine decides)."""
    if not message.HasField("protocol"):
        return None
    offer = message.protocol
    problem = check_offer(offer.version, offer.oldest, offer.features, offer.release)
    if problem is not None:
        raise MalformedPeerMessage(f"a malformed protocol offer: {problem}")
    return Speaks(offer.version, offer.oldest, frozenset(offer.features), offer.release)


def envelope_from_pb(message: pb.Envelope, protocol: Speaks | None = None) -> Envelope:
    return Envelope(
        sender=message.sender,
        boot_nonce=message.boot_nonce,
        hlc=message.hlc,
        address=message.address,
        name=message.name,
        members=tuple(member_from_pb(m) for m in message.members),
        watermarks=dict(message.watermarks),
        high_seqs=dict(message.high_seqs),
        issued_seq=message.issued_seq,
        protocol=protocol,
        refuses_writes=message.refuses_writes[:MAX_REASON_CHARS],
        recipient=message.recipient,
        away=message.away,
    )


# ---- requests ---------------------------------------------------------------------


def request_to_pb(envelope: Envelope, body: Request) -> Any:
    env = envelope_to_pb(envelope)
    if isinstance(body, Push):
        return pb.PushRequest(
            envelope=env,
            records=[record_to_pb(r) for r in body.records],
            coverage=[_coverage_to_pb(c) for c in body.coverage],
            announced=[pb.RecordId(origin=o, seq=s, record_key=k) for o, s, k in body.announced],
        )
    if isinstance(body, Exchange):
        return pb.ExchangeRequest(
            envelope=env, digest=body.digest, protocol=protocol_to_pb(envelope.protocol)
        )
    if isinstance(body, Ping):
        return pb.PingRequest(
            envelope=env,
            sent_ms=body.sent_ms,
            probe_target=body.probe_target,
            target_address=body.target_address,
        )
    if isinstance(body, Join):
        return pb.JoinRequest(envelope=env, protocol=protocol_to_pb(envelope.protocol))
    if isinstance(body, Admit):
        return pb.AdmitRequest(envelope=env)
    return pb.AuditRequest(
        envelope=env,
        buckets=audit.pack_buckets(list(body.buckets)) if body.buckets else b"",
        fetch=list(body.fetch),
        scan_from=body.scan_from,
    )


def request_from_pb(method: str, message: Any) -> tuple[Envelope, Request]:
    protocol = protocol_from_pb(message) if method in _MEETINGS else None
    envelope = envelope_from_pb(message.envelope, protocol)
    body: Request
    if method == "Push":
        body = Push(
            tuple(record_from_pb(r) for r in message.records),
            tuple(_coverage_from_pb(c) for c in message.coverage),
            tuple((a.origin, a.seq, a.record_key) for a in message.announced),
        )
    elif method == "Exchange":
        body = Exchange(dict(message.digest or message.envelope.watermarks))
    elif method == "Ping":
        body = Ping(message.sent_ms, message.probe_target, message.target_address)
    elif method == "Join":
        body = Join()
    elif method == "Admit":
        body = Admit()
    else:
        buckets: tuple[int, ...] = ()
        if message.buckets:
            if len(message.buckets) != audit.BUCKETS * 8:
                raise MalformedPeerMessage(f"an audit carries {audit.BUCKETS} buckets")
            buckets = tuple(audit.unpack_buckets(message.buckets))
        body = Audit(buckets, tuple(message.fetch), message.scan_from)
    return envelope, body


# ---- replies ----------------------------------------------------------------------


def reply_to_pb(envelope: Envelope, body: ReplyBody) -> Any:
    env = envelope_to_pb(envelope)
    if isinstance(body, PushReply):
        return pb.PushResponse(envelope=env, not_ready=body.not_ready)
    if isinstance(body, ExchangeReply):
        return pb.ExchangeResponse(
            envelope=env,
            records=[record_to_pb(r) for r in body.records],
            coverage=[_coverage_to_pb(c) for c in body.coverage],
            protocol=protocol_to_pb(envelope.protocol),
        )
    if isinstance(body, PingReply):
        return pb.PingResponse(
            envelope=env,
            received_ms=body.received_ms,
            replied_ms=body.replied_ms,
            target_alive=body.target_alive,
            replied_wall_ms=body.replied_wall_ms,
        )
    if isinstance(body, JoinReply):
        return pb.JoinResponse(
            envelope=env,
            members=[member_to_pb(m) for m in body.members],
            protocol=protocol_to_pb(envelope.protocol),
        )
    if isinstance(body, AdmitReply):
        return pb.AdmitResponse(envelope=env, admitted=body.admitted, reason=body.reason)
    return pb.AuditResponse(
        envelope=env,
        differing=list(body.differing),
        entries=[
            pb.AuditEntry(
                record_key=e.stored_key,
                hlc=e.hlc,
                origin=e.origin,
                seq=e.seq,
                tombstone=e.tombstone,
                expiration=e.expiration,
            )
            for e in body.entries
        ],
        records=[record_to_pb(r) for r in body.records],
        scan_next=body.scan_next,
    )


def reply_from_pb(method: str, message: Any) -> tuple[Envelope, ReplyBody]:
    protocol = protocol_from_pb(message) if method in _MEETINGS else None
    envelope = envelope_from_pb(message.envelope, protocol)
    body: ReplyBody
    if method == "Push":
        body = PushReply(message.not_ready)
    elif method == "Exchange":
        body = ExchangeReply(
            tuple(record_from_pb(r) for r in message.records),
            tuple(_coverage_from_pb(c) for c in message.coverage),
        )
    elif method == "Ping":
        body = PingReply(
            message.received_ms, message.replied_ms, message.target_alive, message.replied_wall_ms
        )
    elif method == "Join":
        body = JoinReply(tuple(member_from_pb(m) for m in message.members))
    elif method == "Admit":
        body = AdmitReply(message.admitted, message.reason)
    else:
        body = AuditReply(
            tuple(message.differing),
            tuple(
                AuditEntry(e.record_key, e.hlc, e.origin, e.seq, e.tombstone, e.expiration)
                for e in message.entries
            ),
            tuple(record_from_pb(r) for r in message.records),
            message.scan_next,
        )
    return envelope, body
