"""Every protocol knob in one place, with profiles (in the manner of memberlist).

``ProtocolConfig.lan()`` is the default of a node; ``local()`` runs the same
protocol in milliseconds for tests and the simulator's quick runs; ``wan()``
stretches the timers for links with tens of milliseconds of latency. The
node's flags and TOML settings map onto one of these (``rumor node`` starts
from ``lan()``); the engine, its drivers and the simulator read nothing else.

Suspicion and retransmission scale with the cluster, as memberlist does: a
member has ``suspicion_mult * log10(n)`` probe intervals to refute before it is
declared dead (never less than ``suspicion_timeout_ms``), and each membership
update is piggybacked ``retransmit_mult * ceil(log10(n + 1))`` times, so news
reaches every member with high probability however large the cluster grows.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProtocolConfig:
    # ---- push (the rumor) ----
    gossip_interval_ms: int = 10  # how often push queues flush: latency against calls per second
    fanout: int = 4  # peers each new record is pushed to: e^-fanout of nodes wait for a pull
    # Further peers told only the ids: they pull what push missed. 6, not 4: at 1,000
    # simulated nodes a node neither pushed nor told a record waits for anti-entropy
    # (~e^-(fanout + lazy) of the nodes); 4 left 98.5-99.0% of writes everywhere
    # within 1 s, 6 reaches 99.9% for 24% more messages (ids only).
    lazy_fanout: int = 6
    pull_grace_ms: int = 50  # an announced record not pushed by then is pulled
    push_batch_bytes: int = 1024 * 1024  # one Push at most: a large backlog takes several
    # A peer has one Push in flight: a lost one must not hold its queue for a whole RPC
    # timeout (with 1% loss, 10 s stalls made writes take seconds to spread); its
    # records are queued again.
    push_timeout_ms: int = 500
    # Per peer, in bytes: memory stays bounded whatever the records weigh; overflow is
    # counted and left to anti-entropy. A dead member's queue is dropped.
    push_queue_bytes: int = 8 * 1024 * 1024
    # ---- anti-entropy ----
    anti_entropy_interval_ms: int = 1000  # in-sync rounds cost O(origins) bytes each
    delta_budget_bytes: int = 4 * 1024 * 1024  # one answer at most; a cut-short one is followed
    # Log entries one answer visits: bounds its time on the event loop (~10 ms) whatever
    # the store holds; a cut-short answer is followed at once, so a catch-up only takes
    # more rounds.
    answer_entry_budget: int = 1500
    max_follow_up_rounds: int = 100_000  # of one synchronisation: it ends when complete
    apply_slice_records: int = 2000  # received records applied per step: the loop breathes
    # ---- SWIM membership ----
    probe_interval_ms: int = 1000  # one member probed per interval (round-robin)
    probe_timeout_ms: int = 500  # direct probe; indirect probes get twice this
    indirect_probes: int = 3  # members asked to probe a silent one: a lossy link is not death
    suspicion_timeout_ms: int = 5000  # floor of the time a suspect has to refute
    suspicion_mult: int = 4  # suspicion = max(floor, mult * log10(n) * probe interval)
    retransmit_mult: int = 4  # each member update rides on mult * ceil(log10(n + 1)) messages
    member_timeout_ms: int = 0  # remove a member after this much dead time (0: never)
    reconnect_share: float = 0.25  # of probe rounds that also knock on a dead member's door
    # ---- joining and seeds ----
    join_timeout_ms: int = 5000  # serve alone after this if no seed answered (and keep trying)
    seed_retry_min_ms: int = 200  # first retry of the seeds; doubles (jittered) ...
    seed_retry_max_ms: int = 10_000  # ... up to this, for ever, while no member is live
    seed_contact_interval_ms: int = 30_000  # every node joins through a random seed this often
    # A fresh node fetches a peer's copy instead of pulling every record (off unless the
    # driver can fetch one: the node turns it on, see ``--bootstrap-by-snapshot``).
    snapshot_bootstrap: bool = False
    snapshot_hold_ms: int = 60_000  # an admission slot frees this long after the yes
    # A peer holding fewer records (and tombstones) says no: anti-entropy brings that
    # many in about a second, quicker than a checkpoint, a download and a restart.
    snapshot_min_records: int = 50_000
    # ---- audit, GC, clocks ----
    audit_interval_ms: int = 600_000  # a backstop: repairs must stay 0
    # Records one audit answer compares: an audit walks the key space in slices of this
    # (one round each, back to back), so no answer scans the whole store on the loop.
    audit_scan_records: int = 3000
    gc_grace_ms: int = 60_000  # between a tombstone being stable everywhere and its purge
    sweep_interval_ms: int = 200  # a slice of the key space is swept for purgeable records
    sweep_slice_records: int = 2000  # headers per slice (~3 ms at 1 M keys): the loop stays free
    housekeeping_interval_ms: int = 1000  # GC vectors, the clock fence, scaling: O(members)
    max_clock_offset_ms: int = 500  # records over twice this ahead are deferred
    fence_clock: bool = True  # refuse client writes while this clock is off from the majority
    # ---- calls ----
    # Exchange and audit calls. Answers are budgeted (small), and an anti-entropy round
    # whose message was lost holds the node's one synchronisation until this passes.
    rpc_timeout_ms: int = 2000
    join_call_timeout_ms: int = 2000  # a seed that does not answer this fast is retried later
    leave_timeout_ms: int = 2000  # the "left" announcement is best effort
    min_replicas_timeout_ms: int = 5000  # a put with min_replicas waits this long
    tick_interval_ms: int = 50  # timers are checked at least this often

    @classmethod
    def lan(cls) -> ProtocolConfig:
        """A data centre: sub-millisecond links, the defaults above."""
        return cls()

    @classmethod
    def local(cls) -> ProtocolConfig:
        """One machine (tests): every timer in milliseconds, the same protocol."""
        return cls(
            anti_entropy_interval_ms=200,
            probe_interval_ms=100,
            probe_timeout_ms=100,
            suspicion_timeout_ms=500,
            join_timeout_ms=1000,
            seed_retry_min_ms=50,
            seed_retry_max_ms=500,
            seed_contact_interval_ms=2000,
            audit_interval_ms=5000,
            gc_grace_ms=200,
            housekeeping_interval_ms=100,
            sweep_interval_ms=50,
            rpc_timeout_ms=1000,
            push_timeout_ms=200,
            tick_interval_ms=20,
        )

    @classmethod
    def wan(cls) -> ProtocolConfig:
        """Links across regions: tens of milliseconds, more loss; slower, calmer timers."""
        return cls(
            gossip_interval_ms=50,
            pull_grace_ms=300,
            anti_entropy_interval_ms=3000,
            probe_interval_ms=3000,
            probe_timeout_ms=2000,
            suspicion_timeout_ms=20_000,
            suspicion_mult=6,
            retransmit_mult=4,
            join_timeout_ms=15_000,
            join_call_timeout_ms=5000,
            rpc_timeout_ms=10_000,
            push_timeout_ms=3000,
        )

    @classmethod
    def profile(cls, name: str) -> ProtocolConfig:
        profiles = {"lan": cls.lan, "local": cls.local, "wan": cls.wan}
        if name not in profiles:
            raise ValueError(f"unknown protocol profile {name!r}; expected lan, local or wan")
        return profiles[name]()

    def replace(self, **changes: object) -> ProtocolConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def suspicion_ms(self, members: int) -> int:
        """How long a suspect has to refute, in a cluster of ``members``."""
        scaled = self.suspicion_mult * math.log10(max(members, 1)) * self.probe_interval_ms
        return max(self.suspicion_timeout_ms, int(scaled))

    def retransmits(self, members: int) -> int:
        """How many messages carry each membership update."""
        return max(2, self.retransmit_mult * math.ceil(math.log10(members + 1)))
