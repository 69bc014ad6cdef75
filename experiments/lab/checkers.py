"""Jepsen-style checkers: verdicts on a :class:`~rumor.experiments.lab.history.History`.

The rules are not written here: each checker adapts the history to the
observer-neutral shape of :mod:`rumor.experiments.properties` (``observe``)
and turns what the property finds into a :class:`Verdict` with evidence a
person can read. The simulator's invariants judge by the same definitions.

``lost-writes`` (``properties.lost_writes``)
    Every acknowledged write is held on every node, or hidden by a newer
    record of its key (even one that has since expired), or purged: a node
    may hold nothing only when a tombstone or expired put at least as new,
    acknowledged or seen in a Watch stream, may have been purged.
``convergence`` (``properties.convergence``)
    After the heal, the audit digests of all nodes become equal within a
    bound, and we say how long it took.
``lww`` (``properties.lww``)
    Each key ends at the same version on every node, its highest
    acknowledged write, or a newer one when an unacknowledged
    :class:`~rumor.experiments.lab.history.Attempt` on the key may have
    written it.
``no-resurrection`` (``properties.resurrection``)
    A key whose highest acknowledged write is a delete, or an expired put,
    is not live on any node at the end (unless an attempt may have revived
    it); and no node's Watch stream applies a version older than a
    tombstone it already applied.

``session-guarantees`` (``properties.session_guarantees``)
    Over the calls of the moving clients (a random node per call):
    read-your-writes, monotonic reads, monotonic writes and
    writes-follow-reads, per key. The clients in a session must break none;
    the others' violations are counted per guarantee, the figure that shows
    what sessions buy. Judged only when the scenario has moving clients.

An :class:`~rumor.experiments.lab.history.Attempt` (a write that failed or
timed out) is a write not acknowledged, of unknown version; a Watch event is
a record seen. ``experiments.visibility`` measures rather than judges:
t-visibility per node and time to full replication.

Versions are (hlc, origin) tuples and compare as such; ``*_ns`` times are the
harness host's monotonic clock; expirations are absolute wall-clock seconds
judged at ``history.end_wall_s``, when the final state was read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rumor.experiments.lab.history import Ack, Held, History, Version
from rumor.experiments.properties import convergence as convergence_property
from rumor.experiments.properties import lost_writes as lost_writes_property
from rumor.experiments.properties import lww as lww_property
from rumor.experiments.properties import resurrection
from rumor.experiments.properties import session_guarantees as sessions
from rumor.experiments.properties.observation import Applied, Observation, Record, Write
from rumor.experiments.properties.purgeability import is_expired

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


#: A verdict keeps at most this many detail lines (and says how many more there were).
MAX_DETAILS = 200

DEFAULT_CONVERGENCE_BOUND_S = 30.0


# ---------------------------------------------------------------------------
# Verdicts


@dataclass(frozen=True)
class Verdict:
    """The outcome of one checker: pass or fail, a one-line summary and the evidence."""

    name: str
    ok: bool
    summary: str
    details: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One terminal line, e.g. ``✔ lost-writes: 0 of 1234 acknowledged writes lost``."""
        mark = "✔" if self.ok else "✘"
        return f"{mark} {self.name}: {self.summary}"


def _capped(details: list[str]) -> list[str]:
    if len(details) <= MAX_DETAILS:
        return details
    return [*details[:MAX_DETAILS], f"… and {len(details) - MAX_DETAILS} more"]


# ---------------------------------------------------------------------------
# The history as the properties see it


def node_names(history: History) -> list[str]:
    """The nodes of the run: ``history.nodes``, or every node named anywhere if that is empty."""
    if history.nodes:
        return list(history.nodes)
    seen: set[str] = set(history.final_digests)
    seen.update(h.node for h in history.held)
    seen.update(a.node for a in history.applied)
    seen.update(a.node for a in history.acks)
    return sorted(seen)


def held_index(history: History) -> dict[tuple[str, str], Held]:
    """(node, key) → the record the node holds; the highest version if listed twice."""
    index: dict[tuple[str, str], Held] = {}
    for record in history.held:
        slot = (record.node, record.key)
        current = index.get(slot)
        if current is None or record.version > current.version:
            index[slot] = record
    return index


def observe(history: History) -> Observation:
    """The history in the properties' shape.

    Acks are acknowledged writes (``Write.index``: their place in
    ``history.acks``), attempts are writes not acknowledged and of unknown
    version, Watch events are records seen.
    """
    writes = [
        Write(ack.key, ack.version, ack.deleted, ack.expiration, True, index)
        for index, ack in enumerate(history.acks)
    ]
    writes += [
        Write(attempt.key, None, attempt.deleted, None, False, index)
        for index, attempt in enumerate(history.attempts)
    ]
    held = {
        slot: Record(record.key, record.version, record.deleted, record.expiration)
        for slot, record in held_index(history).items()
    }
    seen = tuple(
        Record(event.key, event.version, event.deleted, event.expiration)
        for event in history.applied
    )
    return Observation(tuple(node_names(history)), tuple(writes), held, history.end_wall_s, seen)


# ---------------------------------------------------------------------------
# Evidence, as people read it


def format_version(version: Version) -> str:
    """A version as ``(hlc, origin)`` with the origin in hex, as node ids are shown."""
    hlc, origin = version
    return f"({hlc}, {origin:x})"


def _describe_write(ack: Ack, started_ns: int) -> str:
    kind = "delete" if ack.deleted else "put"
    at_s = (ack.acked_ns - started_ns) / NS_PER_S
    return (
        f"{kind} op {ack.op} {format_version(ack.version)} seq {ack.seq} "
        f"acked by {ack.node} at +{at_s:.3f} s"
    )


def _describe_held(record: Held | None, end_wall_s: float) -> str:
    if record is None:
        return "nothing"
    if record.deleted:
        kind = "tombstone"
    elif is_expired(record.expiration, end_wall_s):
        kind = "expired put"
    else:
        kind = "put"
    return f"{kind} {format_version(record.version)} seq {record.seq}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# ---------------------------------------------------------------------------
# Lost acknowledged writes


def lost_writes(history: History) -> Verdict:
    """No acknowledged write is lost unless a higher version of its key is held everywhere."""
    held = held_index(history)
    details: list[str] = []
    lost_ops: set[int] = set()
    for found in lost_writes_property.lost_writes(observe(history)):
        ack = history.acks[found.write.index]
        lost_ops.add(found.write.index)
        record = held.get((found.node, ack.key))
        details.append(
            f"key {ack.key!r}: {_describe_write(ack, history.started_ns)}; "
            f"{found.node} holds {_describe_held(record, history.end_wall_s)}"
        )
    total = len(history.acks)
    summary = f"{len(lost_ops)} of {total} acknowledged writes lost"
    if details:
        summary += f" ({_plural(len(details), 'node record')} behind)"
    return Verdict(lost_writes_property.NAME, not details, summary, _capped(details))


# ---------------------------------------------------------------------------
# Convergence


def convergence_time_s(history: History) -> float | None:
    """Seconds from the heal to equal digests everywhere; None if they never became equal.

    A history without a heal mark (``healed_ns`` 0: no fault schedule) counts
    from the start of the run.
    """
    if history.converged_ns is None:
        return None
    reference_ns = history.healed_ns or history.started_ns
    return max(0, history.converged_ns - reference_ns) / NS_PER_S


def convergence(history: History, bound_s: float = DEFAULT_CONVERGENCE_BOUND_S) -> Verdict:
    """Every node ends with the same audit digest, reached within ``bound_s`` of the heal."""
    nodes = node_names(history)
    found = convergence_property.convergence(
        {node: history.final_digests.get(node) for node in nodes},
        convergence_time_s(history),
        bound_s,
    )
    details: list[str] = []
    if found.missing:
        details.append(f"no final digest from {', '.join(found.missing)}")
    if len(found.groups) > 1:
        for digest, members in found.groups.items():
            details.append(f"digest {digest:016x} on {', '.join(members)}")
    took_s = found.took_s
    if took_s is None:
        details.append(f"digests did not become equal within {bound_s:g} s of the heal")
    elif took_s > bound_s:
        details.append(f"digests became equal {took_s:.3f} s after the heal, over {bound_s:g} s")

    if len(found.groups) > 1:
        summary = f"{len(found.groups)} different final digests across {len(nodes)} nodes"
    elif found.missing:
        summary = f"final digest missing from {_plural(len(found.missing), 'node')}"
    elif took_s is None:
        summary = f"final digests equal, but not within {bound_s:g} s of the heal"
    else:
        late = "only " if took_s > bound_s else ""
        summary = (
            f"digests equal on all {len(nodes)} nodes {late}{took_s:.3f} s after the heal "
            f"(bound {bound_s:g} s)"
        )
    return Verdict(convergence_property.NAME, found.ok, summary, _capped(details))


# ---------------------------------------------------------------------------
# Last writer wins


def lww(history: History) -> Verdict:
    """Each key's final version is the same on every node and is its highest acknowledged write."""
    observation = observe(history)
    nodes = observation.nodes
    held = held_index(history)
    end, started = history.end_wall_s, history.started_ns
    details: list[str] = []
    wrong_keys: set[str] = set()
    for found in lww_property.lww(observation):
        key = found.key
        wrong_keys.add(key)
        records = {node: held.get((node, key)) for node in nodes}
        sample = next((record for record in records.values() if record is not None), None)
        best = history.acks[found.best.index] if found.best is not None else None
        best_text = _describe_write(best, started) if best is not None else ""
        if found.wrong is lww_property.Wrong.DISAGREE:
            holdings = "; ".join(
                f"{node} holds {_describe_held(records[node], end)}" for node in nodes
            )
            problem = f"nodes disagree: {holdings}"
        elif found.wrong is lww_property.Wrong.MISSING_LIVE:
            absent = [node for node, record in records.items() if record is None]
            present = [node for node, record in records.items() if record is not None]
            problem = (
                f"{', '.join(absent)} hold nothing while "
                f"{', '.join(present)} hold {_describe_held(sample, end)}"
            )
        elif found.wrong is lww_property.Wrong.NOT_HIGHEST:
            problem = (
                f"all hold {_describe_held(sample, end)}, not the highest "
                f"acknowledged write, {best_text}"
            )
        else:
            problem = f"no node holds anything, but the highest acknowledged write is {best_text}"
        details.append(f"key {key!r}: {problem}")
    keys = len(observation.judged_keys())
    summary = f"{len(wrong_keys)} of {keys} keys do not end at their highest acknowledged write"
    if not wrong_keys:
        summary = f"all {keys} keys end at their highest acknowledged write on every node"
    return Verdict(lww_property.NAME, not details, summary, _capped(details))


# ---------------------------------------------------------------------------
# No resurrection


def no_resurrection(history: History) -> Verdict:
    """No deleted or expired key comes back, at the end or in any node's Watch stream."""
    observation = observe(history)
    held = held_index(history)
    end = history.end_wall_s
    details: list[str] = []

    revived = resurrection.revived(observation)
    for found in revived:
        best = history.acks[found.gone_by.index]
        reason = "deleted" if best.deleted else "expired"
        details.append(
            f"key {found.key!r}: {reason} by {_describe_write(best, history.started_ns)}, "
            f"but {found.node} holds live {_describe_held(held[(found.node, found.key)], end)}"
        )

    events = [
        Applied(event.node, event.key, event.version, event.deleted, event.applied_ns)
        for event in history.applied
    ]
    reapplied = resurrection.applied_after_tombstone(events)
    for again in reapplied:
        event, tombstone = again.event, again.tombstone
        kind = "tombstone" if event.deleted else "live put"
        delay_ms = (event.at - tombstone.at) / NS_PER_MS
        details.append(
            f"key {event.key!r}: {event.node} applied {kind} {format_version(event.version)} "
            f"{delay_ms:.1f} ms after tombstone {format_version(tombstone.version)}"
        )

    if details:
        summary = (
            f"{len(revived)} live records of deleted or expired keys at the end, "
            f"{len(reapplied)} older versions applied after a tombstone"
        )
    else:
        gone = len(resurrection.gone_keys(observation))
        summary = (
            f"no deleted or expired key came back ({_plural(gone, 'such key')}, "
            f"{len(history.applied)} watch events)"
        )
    return Verdict(resurrection.NAME, not details, summary, _capped(details))


# ---------------------------------------------------------------------------


# Session guarantees


def client_calls(history: History, *, session: bool) -> list[sessions.ClientCall]:
    """The moving clients' calls (those in a session, or the others) in the properties'
    shape: a read's version is that of the acknowledged write whose value it returned."""
    versions = {ack.op: ack.version for ack in history.acks}
    calls: list[sessions.ClientCall] = []
    for index, call in enumerate(history.moving):
        if call.session != session:
            continue
        kind = sessions.Kind(call.kind)
        if kind is sessions.Kind.READ:
            version = None if call.read_op is None else versions.get(call.read_op)
        else:
            version = (call.hlc, call.origin) if call.ok else None
        calls.append(
            sessions.ClientCall(call.client, kind, call.key, version, call.ok, call.found, index)
        )
    return calls


def issued_deletes(history: History) -> dict[str, list[Version | None]]:
    """Per key, every delete issued: its version, None when not acknowledged."""
    deletes: dict[str, list[Version | None]] = {}
    for ack in history.acks:
        if ack.deleted:
            deletes.setdefault(ack.key, []).append(ack.version)
    for attempt in history.attempts:
        if attempt.deleted:
            deletes.setdefault(attempt.key, []).append(None)
    return deletes


def session_figures(history: History) -> dict[str, dict[str, int]]:
    """With and without sessions: calls, reads, unanswered calls and violations per guarantee."""
    deletes = issued_deletes(history)
    figures: dict[str, dict[str, int]] = {}
    for label, session in (("with_sessions", True), ("without_sessions", False)):
        calls = client_calls(history, session=session)
        found = sessions.counts(sessions.violations(calls, deletes))
        figures[label] = {
            "calls": len(calls),
            "reads": sum(1 for c in calls if c.kind is sessions.Kind.READ),
            "unanswered": sum(1 for c in calls if not c.answered),
            **{guarantee.value: count for guarantee, count in found.items()},
        }
    return figures


def session_guarantees(history: History) -> Verdict:
    """Clients in a session break no session guarantee; the others' violations counted."""
    deletes = issued_deletes(history)
    broken = sessions.violations(client_calls(history, session=True), deletes)
    figures = session_figures(history)
    without = figures["without_sessions"]
    plain = ", ".join(f"{g.value} {without[g.value]}" for g in sessions.Guarantee)
    summary = (
        f"with sessions {len(broken)} violations in {figures['with_sessions']['calls']} calls;"
        f" without: {plain} in {without['calls']} calls"
    )
    details = []
    for violation in broken:
        call = history.moving[violation.call.index]
        at_s = (call.started_ns - history.started_ns) / NS_PER_S
        got = (
            "nothing" if violation.call.version is None else format_version(violation.call.version)
        )
        details.append(
            f"client {call.client} {violation.guarantee.value}: {call.kind} of {call.key!r}"
            f" on {call.node} at +{at_s:.3f} s got {got}, wanted at least"
            f" {format_version(violation.wanted)}"
        )
    return Verdict(sessions.NAME, not broken, summary, _capped(details))


# ---------------------------------------------------------------------------


def check_all(history: History, bound_s: float = DEFAULT_CONVERGENCE_BOUND_S) -> list[Verdict]:
    """Every checker, in a fixed order: lost-writes, convergence, lww, no-resurrection, and
    session-guarantees when the run had moving clients."""
    verdicts = [
        lost_writes(history),
        convergence(history, bound_s),
        lww(history),
        no_resurrection(history),
    ]
    if history.moving:
        verdicts.append(session_guarantees(history))
    return verdicts
