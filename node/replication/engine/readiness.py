"""Readiness: whether this node takes client writes and serves reads, and why not.

Two states of the node itself keep it from taking writes, and each is said in
every envelope it sends (``refuses_writes``), so its peers know:

- its clock is off from its peers' (the fence, ``core.clock_fence``): it takes
  no writes, and while its wall clock is the one off it is *not ready* —
  reads are refused UNAVAILABLE naming the offset, so clients fail over, and a
  read never judges an expiration by a clock the node knows is wrong. What the
  engine still decides by time meanwhile (deferral, the horizon of HLC merges,
  purging expired records) it decides by its peers' time (``time_for_records``);
- its disk is full (the driver reports it through ``Done.disk_full``): it
  refuses client writes (RESOURCE_EXHAUSTED) and peers' records, starts no
  work that writes (anti-entropy, audits, sweeps, deferred records), and still
  serves reads. Peers' records wait in their push queues or are caught up by
  anti-entropy once it takes writes again. A node that starts full, unable to
  take a synchronisation, serves what it holds at once (if it holds anything).

The driver's readiness (gRPC health, ``/healthz``) is ``serving`` (it joined)
and the wall clock not fenced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rumor.node.core.clock_fence import ClockFence, FenceVerdict
from rumor.node.core.errors import DISK_FULL, InsufficientStorage, Unavailable
from rumor.node.replication.engine.components import Notify
from rumor.node.replication.engine.messages import NoticeKind, Now

DISK_FULL_REASON = "disk full"


@dataclass(slots=True)
class Readiness:
    fence: ClockFence
    verdict: FenceVerdict = field(default_factory=lambda: FenceVerdict(False, False, 0.0))
    disk_full: bool = False

    warned: bool = False  # the last verdict warned or fenced (said once, until it clears)

    def judge_clock(self, live_peers: list[int], notice: Notify) -> None:
        """Judge the clock anew (every housekeeping interval), with a notice when it starts
        to warn, and when it is fenced or no longer."""
        was = self.verdict
        verdict = self.verdict = self.fence.verdict(live_peers)
        if verdict.warn and not self.warned:
            notice(NoticeKind.CLOCK_OFFSET, "", offset_ms=round(verdict.offset_ms))
        if (verdict.fenced, verdict.wall_fenced) != (was.fenced, was.wall_fenced):
            notice(
                NoticeKind.CLOCK_FENCED if verdict.fenced else NoticeKind.CLOCK_UNFENCED,
                verdict.reason(),
                reads_refused=verdict.wall_fenced,
                wall_offset_ms=round(verdict.wall_offset_ms),
            )
        self.warned = verdict.warn or verdict.fenced

    @property
    def refuses_writes(self) -> str:
        """Why this node takes no writes ("" while it takes them), as peers are told."""
        if self.verdict.fenced:
            return self.verdict.reason()
        if self.disk_full:
            return DISK_FULL_REASON
        return ""

    def not_ready(self) -> str:
        """Why reads are refused too ("" while served)."""
        return self.verdict.read_reason()

    def check_writable(self) -> None:
        if self.verdict.fenced:
            raise Unavailable(self.verdict.reason())
        if self.disk_full:
            raise InsufficientStorage(DISK_FULL)

    def check_readable(self) -> None:
        if self.verdict.wall_fenced:
            raise Unavailable(
                f"{self.verdict.read_reason()}: this node's clock is off from its peers', so it"
                " serves no reads (expirations would be judged wrong); read from another node"
            )

    def time_for_records(self, now: Now) -> Now:
        """``now`` with the wall time corrected to the peers' while the wall clock is
        fenced."""
        if not self.verdict.wall_fenced:
            return now
        return Now(now.mono_ms, self.verdict.corrected_wall_ms(now.wall_ms))
