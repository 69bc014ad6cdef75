"""Every protocol knob in one place, with profiles (in the manner of memberlist).

``ProtocolConfig.lan()`` is the default of a node; ``local()`` runs the same
protocol in milliseconds for tests and the simulator's quick runs; ``wan()``
stretches the timers for links with tens of milliseconds of latency. The
profiles are deltas from the defaults written on the fields.

Each field is declared once, here: its default, a one-line reason and its
bounds. ``validate()`` checks every knob against its bounds. The knobs marked
``flag`` are ``rumor node``'s protocol settings: their flags, RUMOR_*
environment variables and TOML keys are generated from these fields (name,
default, the reason as the help text), over the profile chosen by
``--protocol-profile``. The engine, its drivers and the simulator read nothing
else.

Suspicion and retransmission scale with the cluster, as memberlist does: a
member has ``suspicion_mult * log10(n)`` probe intervals to refute before it is
declared dead (never less than ``suspicion_timeout_ms``), and each membership
update is piggybacked ``retransmit_mult * ceil(log10(n + 1))`` times, so news
reaches every member with high probability however large the cluster grows.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any


def _knob(
    default: int | float | bool,
    reason: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    flag: bool = False,
) -> Any:
    """A knob: its default, the one-line reason for it, its bounds, and whether ``rumor
    node`` offers it as a setting (a flag, a RUMOR_* variable and a TOML key)."""
    return field(
        default=default,
        metadata={"reason": reason, "minimum": minimum, "maximum": maximum, "flag": flag},
    )


class ProtocolConfigError(ValueError):
    """Knobs out of bounds; one line per knob, each naming it."""


@dataclass(frozen=True, slots=True)
class ProtocolConfig:
    # ---- push (the rumor) ----
    gossip_interval_ms: int = _knob(
        10,
        "How often each peer's push queue is flushed; lower spreads faster, costs more calls.",
        minimum=1,
        flag=True,
    )
    fanout: int = _knob(
        4,
        "How many random live peers receive each batch of new records"
        " (about e^-fanout of the nodes wait for a pull).",
        minimum=1,
        flag=True,
    )
    # 6, not 4: at 1,000 simulated nodes a node neither pushed nor told a record waits
    # for anti-entropy (~e^-(fanout + lazy) of the nodes); 4 left 98.5-99.0% of writes
    # everywhere within 1 s, 6 reaches 99.9% for 24% more messages (ids only).
    lazy_fanout: int = _knob(
        6,
        "Further peers told only the ids of new records; they pull what push missed.",
        minimum=0,
        flag=True,
    )
    pull_grace_ms: int = _knob(50, "An announced record not pushed by then is pulled.", minimum=0)
    push_batch_bytes: int = _knob(
        1024 * 1024, "One Push at most: a large backlog takes several.", minimum=1
    )
    # With 1% loss, 10 s stalls (a whole RPC timeout) made writes take seconds to spread.
    push_timeout_ms: int = _knob(
        500,
        "A peer has one Push in flight: a lost one must not hold its queue long (its"
        " records are queued again).",
        minimum=1,
    )
    push_queue_bytes: int = _knob(
        8 * 1024 * 1024,
        "Per peer: memory stays bounded whatever the records weigh; overflow is counted and"
        " left to anti-entropy (a dead member's queue is dropped).",
        minimum=1,
    )
    # ---- anti-entropy ----
    anti_entropy_interval_ms: int = _knob(
        1000,
        "How often a node compares watermarks with a random peer and repairs"
        " (in-sync rounds cost O(origins) bytes each).",
        minimum=1,
        flag=True,
    )
    delta_budget_bytes: int = _knob(
        4 * 1024 * 1024, "One answer at most; a cut-short one is followed.", minimum=1
    )
    answer_entry_budget: int = _knob(
        1500,
        "Log entries one answer visits: bounds its time on the event loop (~10 ms) whatever"
        " the store holds; a cut-short answer is followed at once.",
        minimum=1,
    )
    max_follow_up_rounds: int = _knob(
        100_000, "Of one synchronisation: it ends when complete.", minimum=0
    )
    apply_slice_records: int = _knob(
        2000, "Received records applied per step: the loop breathes.", minimum=1
    )
    # ---- SWIM membership ----
    probe_interval_ms: int = _knob(
        1000, "SWIM: how often one member is probed (round-robin).", minimum=1, flag=True
    )
    probe_timeout_ms: int = _knob(
        500,
        "SWIM: how long a probe waits before indirect probes (which get twice this).",
        minimum=1,
        flag=True,
    )
    indirect_probes: int = _knob(
        3,
        "SWIM: how many members probe a silent one for us: a lossy link is not death.",
        minimum=0,
        flag=True,
    )
    suspicion_timeout_ms: int = _knob(
        5000,
        "SWIM: how long a suspect has to refute before it is declared dead (a floor: it"
        " grows with log(cluster size)).",
        minimum=1,
        flag=True,
    )
    suspicion_mult: int = _knob(
        4, "Suspicion = max(floor, mult * log10(n) * probe interval).", minimum=1
    )
    retransmit_mult: int = _knob(
        4, "Each member update rides on mult * ceil(log10(n + 1)) messages.", minimum=1
    )
    # Hours, not never: a member gone for good (a scaled-down pod, a lost host) held
    # tombstone GC back for ever. Long enough for a reboot, a rolling upgrade or a
    # volume moved to another host; a member back after it must rejoin as a new node.
    member_timeout_ms: int = _knob(
        4 * 3600 * 1000,
        "Retire a member after this long left or dead (dead: only while a majority of the"
        " members is up); it then stops holding GC back, and must rejoin as a"
        " new node (0: never, and a member gone for good stalls GC until remove-node).",
        minimum=0,
        flag=True,
    )
    unconfirmed_member_timeout_ms: int = _knob(
        60_000,
        "Retire sooner a down member that no probe of this node ever reached and that"
        " wrote nothing held here (a forged id, a replaced address): it holds GC back"
        " only this long (0: only member_timeout_ms applies).",
        minimum=0,
        flag=True,
    )
    reconnect_share: float = _knob(
        0.25,
        "Of probe rounds that also knock on a dead member's door.",
        minimum=0.0,
        maximum=1.0,
    )
    # ---- joining and seeds ----
    join_timeout_ms: int = _knob(
        5000,
        "Serve alone after this long if no seed answered (seeds are still retried for ever).",
        minimum=0,
        flag=True,
    )
    seed_retry_min_ms: int = _knob(
        200, "First retry of the seeds; doubles (jittered) up to seed_retry_max_ms.", minimum=1
    )
    seed_retry_max_ms: int = _knob(
        10_000, "Longest wait between seed retries, for ever, while no member is live.", minimum=1
    )
    seed_contact_interval_ms: int = _knob(
        30_000,
        "How often a node joins through a random seed, so groups formed apart merge.",
        minimum=1,
        flag=True,
    )
    # Off unless the driver can fetch a copy: the node turns it on (``--no-snapshot-bootstrap``
    # turns it off again).
    snapshot_bootstrap: bool = _knob(
        False, "A fresh node fetches a peer's copy instead of pulling every record."
    )
    snapshot_hold_ms: int = _knob(
        60_000, "An admission slot to serve a snapshot frees this long after the yes.", minimum=0
    )
    # Fewer: anti-entropy brings that many in about a second, quicker than a checkpoint,
    # a download and a restart.
    snapshot_min_records: int = _knob(
        50_000,
        "Serve a snapshot to a fresh node only when holding at least this many records"
        " and tombstones (fewer: it catches up by anti-entropy).",
        minimum=0,
        flag=True,
    )
    # ---- audit, GC, clocks ----
    audit_interval_ms: int = _knob(
        600_000,
        "How often buckets are compared with a peer (a backstop; repairs must be 0).",
        minimum=1,
        flag=True,
    )
    audit_scan_records: int = _knob(
        3000,
        "Records one audit answer compares: an audit walks the key space in slices of"
        " this, so no answer scans the whole store on the loop.",
        minimum=1,
    )
    gc_grace_ms: int = _knob(
        60_000,
        "Minimum wait between a tombstone becoming stable everywhere and its purge.",
        minimum=0,
        flag=True,
    )
    sweep_interval_ms: int = _knob(
        200,
        "How often the sweeper purges a slice of tombstones and expired keys.",
        minimum=1,
        flag=True,
    )
    sweep_slice_records: int = _knob(
        2000, "Headers per sweep slice (~3 ms at 1 M keys): the loop stays free.", minimum=1
    )
    housekeeping_interval_ms: int = _knob(
        1000, "GC vectors, the clock fence, scaling: O(members) each time.", minimum=1
    )
    max_clock_offset_ms: int = _knob(
        500,
        "Largest tolerated clock offset; records over twice this ahead are deferred.",
        minimum=1,
        flag=True,
    )
    fence_clock: bool = _knob(
        True, "Refuse client writes while this clock is off from the majority."
    )
    # ---- calls ----
    # Answers are budgeted (small), and an anti-entropy round whose message was lost
    # holds the node's one synchronisation until this passes.
    rpc_timeout_ms: int = _knob(2000, "Deadline of exchange and audit calls.", minimum=1)
    join_call_timeout_ms: int = _knob(
        2000, "A seed that does not answer this fast is retried later.", minimum=1
    )
    leave_timeout_ms: int = _knob(2000, 'The "left" announcement is best effort.', minimum=1)
    min_replicas_timeout_ms: int = _knob(
        5000, "How long a put with min_replicas waits for confirmations.", minimum=1, flag=True
    )
    tick_interval_ms: int = _knob(50, "Timers are checked at least this often.", minimum=1)

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
            unconfirmed_member_timeout_ms=2000,
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

    @staticmethod
    def knobs() -> tuple[dataclasses.Field[Any], ...]:
        """Every knob, in declaration order; ``metadata`` holds its reason and bounds."""
        return dataclasses.fields(ProtocolConfig)

    @staticmethod
    def node_settings() -> tuple[dataclasses.Field[Any], ...]:
        """The knobs ``rumor node`` offers as settings (flags, RUMOR_* variables, TOML)."""
        return tuple(knob for knob in ProtocolConfig.knobs() if knob.metadata["flag"])

    def problems(self) -> list[str]:
        """Each knob out of its bounds, one line each, naming it."""
        found: list[str] = []
        for knob in self.knobs():
            value = getattr(self, knob.name)
            minimum, maximum = knob.metadata["minimum"], knob.metadata["maximum"]
            if minimum is not None and value < minimum:
                found.append(f"{knob.name} must be at least {minimum}")
            elif maximum is not None and value > maximum:
                found.append(f"{knob.name} must be at most {maximum}")
        return found

    def validate(self) -> ProtocolConfig:
        """This config, if every knob is within its bounds; else ProtocolConfigError."""
        found = self.problems()
        if found:
            raise ProtocolConfigError("\n".join(found))
        return self

    def suspicion_ms(self, members: int) -> int:
        """How long a suspect has to refute, in a cluster of ``members``."""
        scaled = self.suspicion_mult * math.log10(max(members, 1)) * self.probe_interval_ms
        return max(self.suspicion_timeout_ms, int(scaled))

    def retransmits(self, members: int) -> int:
        """How many messages carry each membership update."""
        return max(2, self.retransmit_mult * math.ceil(math.log10(members + 1)))
