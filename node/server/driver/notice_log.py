"""How the node logs what its engine notices (``Notice``): one event name per kind.

Noticed problems about peers (malformed messages, clamped claims, probes
answered under another id, misaddressed requests, incompatible peers) go
through the ``LogThrottle``, one line per cause and interval; the rest are
logged as they come. What a notice changes besides the log (readiness, a stop)
is the driver's.
"""

from __future__ import annotations

import structlog

from rumor.node.replication.engine.messages import NoticeKind
from rumor.node.server.log_throttle import LogThrottle

log = structlog.get_logger(__name__)

# The notices after which the node stops serving (removed, a duplicate id, a snapshot
# to install over its store).
STOPPING = frozenset({NoticeKind.REMOVED, NoticeKind.DUPLICATE_ID, NoticeKind.INSTALL_SNAPSHOT})


def log_notice(
    kind: NoticeKind, message: str, fields: dict[str, object], throttle: LogThrottle
) -> None:
    if kind is NoticeKind.READY:
        log.info("node.serving", reason=message)
    elif kind in (NoticeKind.CLOCK_FENCED, NoticeKind.CLOCK_UNFENCED):
        event = "clock.fenced" if kind is NoticeKind.CLOCK_FENCED else "clock.back_in_range"
        log.warning(event, message=message, **fields)
    elif kind in (NoticeKind.REMOVED, NoticeKind.DUPLICATE_ID):
        log.error(f"node.{kind.value}", message=message)
    elif kind is NoticeKind.INSTALL_SNAPSHOT:
        log.info("snapshot.install", message=message, **fields)
    elif kind is NoticeKind.SNAPSHOT:
        log.info("snapshot.join", message=message, **fields)
    elif kind is NoticeKind.MEMBER_STATE:
        log.info("member.state", **fields)
    elif kind is NoticeKind.PEER_PROTOCOL:
        log.info("peer.protocol", **fields)
    elif kind is NoticeKind.INCOMPATIBLE_PEER:
        throttle.warning("replication.incompatible_peer", message, message=message)
    elif kind in (
        NoticeKind.MALFORMED,
        NoticeKind.CLAMPED,
        NoticeKind.PROBE_MISMATCH,
        NoticeKind.MISADDRESSED,
    ):
        cause = fields.get("peer") or fields.get("origin") or fields.get("member")
        throttle.warning(f"replication.{kind.value}", cause, message=message, **fields)
    else:
        log.warning(_LOG_EVENTS.get(kind, f"replication.{kind.value}"), message=message, **fields)


_LOG_EVENTS = {
    NoticeKind.CLOCK_OFFSET: "clock.offset_large",
    NoticeKind.MEMBER_TIMED_OUT: "member.timed_out",
    NoticeKind.AUDIT_REPAIRED: "audit.repaired",
    NoticeKind.SEED_UNREACHABLE: "join.seed_unreachable",
}
