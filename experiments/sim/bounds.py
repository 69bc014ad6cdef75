"""How long a run may take to settle once its faults heal: the bounds its checks allow.

The run is judged some time after the heal, not at it: a call stranded by a
partition must time out, groups must meet again, a member found dead must be
found alive, and anti-entropy and garbage collection must run their rounds.
Each bound is the sum of those steps' worst cases, read from the protocol
config (``Bounds.of`` says which, term by term), so a change of the config
moves the bounds with it; a run that needs longer breaks the invariant the
bound belongs to:

- ``convergence_ms``: every node holds the same records (**convergence**,
  and the removed nodes stop within it); two audit intervals longer after a
  forged claim or a write made while serving alone, which leave what only the
  audit repairs;
- ``duplicate_ms``: a copy of a live node's disk started elsewhere is refused
  as a duplicate id (**one process per id**), counted from when both are
  reachable;
- ``retire_ms``: a member gone for good is retired and stops holding garbage
  collection back (**GC is not stalled**; 0 without a member timeout: never).
"""

from __future__ import annotations

from dataclasses import dataclass

from rumor.node.replication.engine.protocol_config import ProtocolConfig


@dataclass(frozen=True, slots=True)
class Bounds:
    convergence_ms: int
    duplicate_ms: int
    retire_ms: int = 0  # a member gone for good is retired by then (0: never)

    @classmethod
    def of(cls, protocol: ProtocolConfig, members: int, *, forged: bool = False) -> Bounds:
        """From the config: a call stranded by the partition times out (rpc or join call
        timeout),
        groups meet again (a seed contact), a dead member is found alive (suspicion),
        then a few anti-entropy rounds and a GC grace. After a forged watermark claim
        (or a write made while serving alone), add two audit intervals: a clamped lie
        still vouches for seqs up to the origin's high seq, a purge may have raced an
        unknown node's older put, and only the audit — the backstop — repairs those.
        A duplicate: its first join call and seed retry, then a few
        probe rounds for the proof."""
        convergence = (
            max(protocol.rpc_timeout_ms, protocol.join_call_timeout_ms)
            + protocol.seed_contact_interval_ms
            + protocol.suspicion_ms(members)
            + 5 * protocol.anti_entropy_interval_ms
            # Expired records count in the audit buckets until purged, and purges need
            # a GC checkpoint, its grace and a sweep on every node.
            + 2 * (protocol.gc_grace_ms + protocol.housekeeping_interval_ms)
            + protocol.sweep_interval_ms
            + (2 * protocol.audit_interval_ms if forged else 0)
        )
        duplicate = (
            protocol.join_call_timeout_ms
            + protocol.seed_retry_max_ms
            + 4 * protocol.probe_interval_ms
            + 2 * protocol.probe_timeout_ms
        )
        # Gone: found silent (a probe round), suspected, declared dead, timed out, and
        # the retirement carried to every node (a few rounds of anti-entropy).
        retire = (
            protocol.member_timeout_ms
            + (members + 2) * protocol.probe_interval_ms
            + 3 * protocol.probe_timeout_ms
            + protocol.suspicion_ms(members)
            + 2 * protocol.housekeeping_interval_ms
            + 5 * protocol.anti_entropy_interval_ms
            if protocol.member_timeout_ms
            else 0
        )
        return cls(convergence, duplicate, retire)
