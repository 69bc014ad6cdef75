"""What the engine takes in and hands out, as plain values (no protobuf, no grpc).

Peers talk in request/reply pairs. The engine hands the driver ``Outbound``
requests (each with an id and the peer to send it to) and ``Reply`` values
(answers to requests it was given in ``Inbound``). The driver reports what
came back: a peer's answer as ``Response`` through ``Engine.step``, a call
that failed as ``Failed`` through ``Engine.advance``. Every request and reply
carries an ``Envelope``: who sent it, its boot nonce and HLC, a few membership
updates and, on the messages that need them, its durable watermarks.

The gRPC driver converts these to and from the protobuf messages of
``rumor.v1.replication``; the simulator passes them as they are.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from rumor.node.core.compatibility import Speaks
from rumor.node.core.membership import Member
from rumor.node.replication.replica.delta import AuditEntry, Coverage, WireRecord


@dataclass(frozen=True, slots=True)
class Envelope:
    sender: int
    boot_nonce: int
    hlc: int
    address: str = ""
    name: str = ""
    members: tuple[Member, ...] = ()
    watermarks: Mapping[int, int] = field(default_factory=dict)  # empty: not carried
    # Each origin's highest seq the sender knows it issued (merged by max): the
    # ceiling that watermark claims are clamped to. Carried with ``members``.
    high_seqs: Mapping[int, int] = field(default_factory=dict)
    # The sender's last own seq issued, durable or not (GC's phase 2 waits for it).
    issued_seq: int = 0
    # What the sender speaks (see versions); carried by Join and Exchange, both ways.
    protocol: Speaks | None = None
    # Why the sender takes no writes now (its disk is full, its clock is fenced); "": it does.
    refuses_writes: str = ""
    # The member the sender meant to reach (0: a seed known only by its address). A
    # process answering under another id is not that member (a new process at its
    # old address): probes compare, and a receiver counts requests meant for another.
    recipient: int = 0
    # The sender is back from being down longer than the member timeout: a member that
    # does not know its id refuses it as removed (see envelopes, "Back past the timeout").
    away: bool = False


# ---- requests and their replies -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Push:
    """Records for the receiver; ``coverage`` only on an anti-entropy push-back;
    ``announced``: (origin, seq, namespace + key) of records the sender holds and
    pushed to others: the receiver fetches those it still lacks after a grace."""

    records: tuple[WireRecord, ...] = ()
    coverage: tuple[Coverage, ...] = ()
    announced: tuple[tuple[int, int, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class PushReply:
    not_ready: bool = False  # a joining node takes no epidemic pushes before its first sync


@dataclass(frozen=True, slots=True)
class Exchange:
    """Anti-entropy: answer what I lack above ``digest`` (durable marks + provisional claims)."""

    digest: Mapping[int, int]


@dataclass(frozen=True, slots=True)
class ExchangeReply:
    records: tuple[WireRecord, ...] = ()
    coverage: tuple[Coverage, ...] = ()


@dataclass(frozen=True, slots=True)
class Ping:
    sent_ms: int = 0  # the asker's clock (max of wall and HLC) when it sent the ping
    probe_target: int = 0  # non-zero: an indirect probe, ping this member for me
    target_address: str = ""


@dataclass(frozen=True, slots=True)
class PingReply:
    received_ms: int = 0
    replied_ms: int = 0
    target_alive: bool = False
    replied_wall_ms: int = 0  # the replier's wall clock alone (0: not said, an older node)


@dataclass(frozen=True, slots=True)
class Join:
    pass


@dataclass(frozen=True, slots=True)
class JoinReply:
    members: tuple[Member, ...] = ()


@dataclass(frozen=True, slots=True)
class Audit:
    """Either the asker's buckets (compare the records from ``scan_from`` on, one
    slice of the key space) or record keys to send back (fetch)."""

    buckets: tuple[int, ...] = ()
    fetch: tuple[bytes, ...] = ()
    scan_from: bytes = b""


@dataclass(frozen=True, slots=True)
class AuditReply:
    differing: tuple[int, ...] = ()
    entries: tuple[AuditEntry, ...] = ()
    records: tuple[WireRecord, ...] = ()
    scan_next: bytes = b""  # the compared slice ended here (empty: the last slice)


@dataclass(frozen=True, slots=True)
class Admit:
    """A fresh node asks to be admitted for bootstrap by snapshot (see snapshot_join)."""


@dataclass(frozen=True, slots=True)
class AdmitReply:
    admitted: bool = False
    reason: str = ""  # why not


Request = Push | Exchange | Ping | Join | Audit | Admit
ReplyBody = PushReply | ExchangeReply | PingReply | JoinReply | AuditReply | AdmitReply


class RefusalCode(enum.Enum):
    """Why a request was refused; the driver maps each onto a status code."""

    REMOVED = "removed"  # the sender's id was removed from the cluster (FAILED_PRECONDITION)
    DUPLICATE_ID = "duplicate_id"  # another live process holds the id (FAILED_PRECONDITION)
    MALFORMED = "malformed"  # a record or claim fails the structural rules (INVALID_ARGUMENT)
    UNAVAILABLE = "unavailable"  # this node cannot take it now (UNAVAILABLE)
    INCOMPATIBLE = "incompatible"  # no protocol version in common (FAILED_PRECONDITION)


@dataclass(frozen=True, slots=True)
class Refusal:
    code: RefusalCode
    message: str


# ---- what crosses between the engine and its driver ----------------------------------


@dataclass(frozen=True, slots=True)
class Inbound:
    """A request from a peer; the answer comes back in ``Ready.replies`` under ``token``."""

    token: int
    envelope: Envelope
    body: Request


@dataclass(frozen=True, slots=True)
class Response:
    """A peer's answer to the outbound request ``message_id``."""

    message_id: int
    envelope: Envelope
    body: ReplyBody


@dataclass(frozen=True, slots=True)
class Outbound:
    """A request to send. ``to`` is the member id (0 for a seed known only by address)."""

    message_id: int
    to: int
    address: str
    envelope: Envelope
    body: Request
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class SnapshotFetch:
    """Fetch a consistent copy of member ``peer``'s store (it admitted this node), then
    report the outcome through ``Done.snapshot_fetched`` or ``Done.snapshot_failed``."""

    peer: int
    address: str


@dataclass(frozen=True, slots=True)
class Reply:
    token: int
    envelope: Envelope
    body: ReplyBody | Refusal


class FailureCause(enum.Enum):
    """Why an outbound call failed, as the driver could tell."""

    UNREACHABLE = "unreachable"  # connection refused, no route, DNS failure
    DEADLINE = "deadline"  # no answer within the timeout
    UNAUTHENTICATED = "unauthenticated"  # wrong or missing cluster secret
    CERTIFICATE = "certificate"  # TLS handshake failed
    REFUSED = "refused"  # the peer refused it (UNAVAILABLE, not ready, a fault rule)
    REMOVED = "removed"  # the peer says this node was removed
    DUPLICATE_ID = "duplicate_id"  # the peer says another live process holds this node's id
    MALFORMED = "malformed"  # the peer rejected the message as malformed
    INCOMPATIBLE = "incompatible"  # no protocol version in common (either side said so)
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Failed:
    message_id: int
    cause: FailureCause
    detail: str = ""


def failure_cause(refusal: Refusal) -> FailureCause:
    """The cause a call fails with when its answer is refused on arrival (as the peer's
    refusal of the request would be)."""
    return _REFUSAL_CAUSES[refusal.code]


_REFUSAL_CAUSES = {
    RefusalCode.REMOVED: FailureCause.REMOVED,
    RefusalCode.DUPLICATE_ID: FailureCause.DUPLICATE_ID,
    RefusalCode.MALFORMED: FailureCause.MALFORMED,
    RefusalCode.UNAVAILABLE: FailureCause.REFUSED,
    RefusalCode.INCOMPATIBLE: FailureCause.INCOMPATIBLE,
}


class NoticeKind(enum.Enum):
    """Things the host must act on or log; the engine itself does no I/O."""

    READY = "ready"  # serving: the first complete exchange, or alone after the join timeout
    REMOVED = "removed"  # this node was removed: stop (exit 78)
    DUPLICATE_ID = "duplicate_id"  # another live process holds this node's id: stop
    MEMBER_STATE = "member_state"  # a member changed state
    MEMBER_TIMED_OUT = "member_timed_out"  # retired: left or dead past its timeout
    AUDIT_REPAIRED = "audit_repaired"  # a genuine divergence was repaired (a bug to report)
    CLOCK_OFFSET = "clock_offset"  # this node's clock is off from the majority (warn only)
    CLOCK_FENCED = "clock_fenced"  # ... and fenced: no writes, not ready for reads
    CLOCK_UNFENCED = "clock_unfenced"  # back in range
    MALFORMED = "malformed"  # a peer sent a malformed message; it was rejected whole
    CLAMPED = "clamped"  # a watermark claim above its origin's known high seq was clamped
    PROBE_MISMATCH = "probe_mismatch"  # a probe was answered under another id: not alive
    MISADDRESSED = "misaddressed"  # a request named another node as its recipient
    SEED_UNREACHABLE = "seed_unreachable"  # no seed answered; retrying with backoff
    SNAPSHOT = "snapshot"  # bootstrap by snapshot: admitted, fetching, or falling back
    INSTALL_SNAPSHOT = "install_snapshot"  # a verified copy is downloaded: stop, install it
    PEER_PROTOCOL = "peer_protocol"  # met a peer process: the version and features agreed
    INCOMPATIBLE_PEER = "incompatible_peer"  # a peer it cannot replicate with (both versions)


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    message: str = ""
    fields: Mapping[str, object] = field(default_factory=dict)


@dataclass(slots=True)
class Ready:
    """What the driver must do now (``Engine.ready``), each thing handed out once."""

    messages: list[Outbound] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    sync_ticket: int = 0  # make every write up to this ticket durable, then ``advance``
    notices: list[Notice] = field(default_factory=list)
    next_tick_ms: int = 0  # call ``tick`` again no later than this (monotonic ms)
    snapshot_fetch: SnapshotFetch | None = None

    def __bool__(self) -> bool:
        return bool(
            self.messages or self.replies or self.sync_ticket or self.notices or self.snapshot_fetch
        )


@dataclass(frozen=True, slots=True)
class Done:
    """What the driver did since the last ``advance``."""

    synced_ticket: int = 0  # every write up to this ticket is durable
    failed: tuple[Failed, ...] = ()
    snapshot_fetched: bool = False  # the copy asked for is downloaded and verified
    snapshot_failed: str = ""  # or why it could not be
    disk_full: bool | None = None  # the disk filled up (True) or has room again (False)


@dataclass(frozen=True, slots=True)
class Now:
    """The time, passed in: monotonic for timers, wall for versions and expirations."""

    mono_ms: int
    wall_ms: int

    @property
    def wall_s(self) -> float:
        return self.wall_ms / 1000
