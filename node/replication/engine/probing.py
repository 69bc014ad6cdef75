"""SWIM failure detection: probes, indirect probes, and clock offsets from pings.

Every ``probe_interval_ms`` one member is pinged (shuffled round-robin, so
each is probed within n rounds). No answer within ``probe_timeout_ms``:
``indirect_probes`` other members ping it on this node's behalf, with twice
the timeout; if none reaches it the member becomes suspect (the membership
transition table decides the rest: dead after the suspicion timeout unless
it refutes). Now and then a dead or departed member is pinged too, since
partitions heal and nodes restart; its answer is proof of life.

A probe is answered by the probed member or it is not an answer. Requests
name their recipient, and a process at the member's address that answers
under another id (a new process at an old address: a pod replaced with a
fresh volume) is not a sign of the member's life: the mismatch is counted
and noticed, and the probe goes on as if nobody had answered (indirect
probes, which check the same, then suspicion). Otherwise the new process
would keep the old id alive for ever, and with it the tombstones that
garbage collection waits to see purged.

Each direct ping also measures the member's clock offset NTP-style (the four
timestamps, our side taken as max(wall clock, HLC), and once more as our
wall clock alone), which the clock fence judges.
"""

from __future__ import annotations

from dataclasses import dataclass

from rumor.node.core.clock_fence import ClockFence, ntp_offset, round_trip
from rumor.node.core.membership import Member
from rumor.node.replication.engine.canaries import Canary
from rumor.node.replication.engine.components import Continuation, Services
from rumor.node.replication.engine.messages import (
    Failed,
    FailureCause,
    NoticeKind,
    Now,
    Ping,
    PingReply,
    Response,
)


@dataclass(slots=True)
class _Probe:
    target: Member
    indirect_left: int = 0  # indirect probes still out
    done: bool = False


class Probing:
    def __init__(self, services: Services, fence: ClockFence) -> None:
        self.services = services
        self.fence = fence  # judges the clock offsets the pings measure
        self.probe: _Probe | None = None
        self._next_probe_ms = 0

    def due_ms(self) -> int:
        return self._next_probe_ms

    def read_ms(self, now: Now) -> int:
        return self.services.replica.clock.read_ms(now.wall_ms)

    def tick(self, now: Now) -> None:
        if now.mono_ms < self._next_probe_ms:
            return
        services = self.services
        self._next_probe_ms = now.mono_ms + services.config.probe_interval_ms
        membership = services.membership
        target = None
        if self.probe is None:
            target = membership.next_probe_target(services.rng)
            if target is not None:
                self.probe = _Probe(target)
                self._ping(target, now, self._direct_answer)
        down = membership.reconnect_target(services.rng)
        if down is not None and (
            target is None or services.rng.random() < services.config.reconnect_share
        ):
            self._ping(down, now, lambda _answer, _now: None)

    def _ping(self, member: Member, now: Now, then: Continuation) -> None:
        sent = self.read_ms(now)
        sent_wall = now.wall_ms

        def measured(answer: Response | Failed, at: Now) -> None:
            if isinstance(answer, Response) and not self._answered_by(answer, member):
                answer = Failed(answer.message_id, FailureCause.OTHER, "answered by another id")
            if isinstance(answer, Response) and isinstance(answer.body, PingReply):
                reply = answer.body
                if reply.received_ms:
                    received, replied = reply.received_ms, reply.replied_ms
                    back = self.read_ms(at)
                    offset = ntp_offset(sent, received, replied, back)
                    # Wall clock against wall clock: the replier's lead of HLC over wall
                    # (it took a peer's HLC a little ahead) is not our clock's fault.
                    lead = replied - reply.replied_wall_ms if reply.replied_wall_ms else 0
                    wall_offset = ntp_offset(sent_wall, received - lead, replied - lead, at.wall_ms)
                    trip = round_trip(sent, received, replied, back)
                    self.fence.record(member.id, offset, wall_offset, trip)
            then(answer, at)

        self.services.send(
            member,
            Ping(sent_ms=sent),
            measured,
            now,
            timeout_ms=self.services.config.probe_timeout_ms,
        )

    def _answered_by(self, answer: Response, member: Member) -> bool:
        """Whether ``member`` itself answered (not another process at its address); a
        mismatch is counted and noticed. A member known by address only (id 0) is
        whoever answers."""
        services = self.services
        answerer = answer.envelope.sender
        if not member.id or answerer == member.id or Canary.ANY_ANSWER_ALIVE in services.canaries:
            return True
        services.stats.probe_mismatches += 1
        services.notice(
            NoticeKind.PROBE_MISMATCH,
            "a probe was answered under another node id: not a sign of the probed member's life",
            member=f"{member.id:016x}",
            answered_by=f"{answerer:016x}",
            address=member.address,
        )
        return False

    def _direct_answer(self, answer: Response | Failed, now: Now) -> None:
        probe = self.probe
        if probe is None:
            return
        if isinstance(answer, Response):
            self._settle(probe, alive=True, now=now)
            return
        services = self.services
        target = probe.target
        helpers = [p for p in services.membership.up_peers() if p.id != target.id]
        helpers = services.rng.sample(helpers, min(services.config.indirect_probes, len(helpers)))
        if not helpers:
            self._settle(probe, alive=False, now=now)
            return
        probe.indirect_left = len(helpers)
        request = Ping(probe_target=target.id, target_address=target.address)
        for helper in helpers:
            services.send(
                helper,
                request,
                lambda reply, at: self._indirect_answer(probe, reply, at),
                now,
                timeout_ms=2 * services.config.probe_timeout_ms,
            )

    def _indirect_answer(self, probe: _Probe, answer: Response | Failed, now: Now) -> None:
        if probe.done:
            return
        probe.indirect_left -= 1
        alive = (
            isinstance(answer, Response)
            and isinstance(answer.body, PingReply)
            and answer.body.target_alive
        )
        if alive:
            self._settle(probe, alive=True, now=now)
        elif probe.indirect_left <= 0:
            self._settle(probe, alive=False, now=now)

    def _settle(self, probe: _Probe, *, alive: bool, now: Now) -> None:
        probe.done = True
        if self.probe is probe:
            self.probe = None
        membership = self.services.membership
        if alive:
            membership.probe_succeeded(probe.target.id, now.mono_ms)
        else:
            membership.probe_failed(probe.target.id, now.mono_ms)
            self.fence.forget(probe.target.id)

    # ---- answering ------------------------------------------------------------

    def answer(self, token: int, sender: int, ping: Ping, now: Now) -> None:
        services = self.services
        received = self.read_ms(now)
        if not ping.probe_target:
            reply = PingReply(received, self.read_ms(now), replied_wall_ms=now.wall_ms)
            services.reply(token, reply, to=sender, all_members=False)
            return
        target = services.membership.members.get(ping.probe_target) or Member(
            ping.probe_target, ping.target_address
        )

        def relayed(answer: Response | Failed, at: Now) -> None:
            alive = isinstance(answer, Response)
            services.reply(token, PingReply(received, self.read_ms(at), alive), to=sender)

        self._ping(target, now, relayed)
