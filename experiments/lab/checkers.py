"""Jepsen-style checkers: verdicts on a :class:`~rumor.experiments.lab.history.History`.

Rumor promises eventual consistency with last-writer-wins (docs/ALGORITHM.md).
Each checker states one consequence of that promise as a rule that can be
judged from what the harness recorded, and returns a :class:`Verdict`:

``lost-writes``
    Every acknowledged write w (put or delete) survives on every node n: n holds,
    for w's key, a record whose version is >= w's. A newer record that hides w
    counts even when it has since expired (the put is hidden, not lost). A node
    may hold *nothing* for the key only when garbage collection may have purged
    what covered w: a tombstone or an expired put, acknowledged or seen in a
    Watch stream, whose version is >= w's (w itself when it is a delete or an
    expired put). Why: an acknowledgement is a promise; losing an
    acknowledged write is the worst failure of a store.
``convergence``
    After the heal, the audit digests of all nodes (one per node, of its audit buckets) become equal
    within a bound, and we say how long it took. Why: eventual consistency
    means exactly this, and the buckets cover every held record, tombstones
    included.
``lww``
    For each key, every node holds the same version, and that version is the
    highest among the key's acknowledged writes. When an unacknowledged
    :class:`~rumor.experiments.lab.history.Attempt` on the key may have written a
    higher one, the held version must be >= the highest acknowledged (and
    still the same everywhere). Nodes holding nothing agree with nodes holding
    a tombstone or an expired record (GC purges those). Why: the replicas must
    not only agree, they must agree on the write the clients were told won.
``no-resurrection``
    A key whose highest acknowledged write is a delete, or a put that has
    expired, is not live (non-tombstone, unexpired) on any node at the end,
    unless an unacknowledged attempt on that key may have written the newer
    live version. And in each node's Watch stream, once the node has applied
    a tombstone of version T for a key, it never applies a version < T of that
    key later. Why: the final-state form catches a deleted key that came back;
    the watch-order form also catches one that came back and went away again
    before the end (for example, a tombstone purged before every member had seen it).

``experiments.visibility`` measures rather than judges: t-visibility per
node (Bailis et al., *Probabilistically Bounded Staleness*): the share of
acknowledged writes a node has applied (the write itself or a newer version
of its key) within t ms of the acknowledgement, and the time to full
replication of each write (the slowest node), as percentiles.

Versions are (hlc, origin) tuples and compare as such; ``*_ns`` times are the
harness host's monotonic clock; expirations are absolute wall-clock seconds
judged at ``history.end_wall_s``, when the final state was read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rumor.experiments.lab.history import Ack, Applied, Held, History, Version

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
# Shared helpers


def format_version(version: Version) -> str:
    """A version as ``(hlc, origin)`` with the origin in hex, as node ids are shown."""
    hlc, origin = version
    return f"({hlc}, {origin:x})"


def node_names(history: History) -> list[str]:
    """The nodes of the run: ``history.nodes``, or every node named anywhere if that is empty."""
    if history.nodes:
        return list(history.nodes)
    seen: set[str] = set(history.final_digests)
    seen.update(h.node for h in history.held)
    seen.update(a.node for a in history.applied)
    seen.update(a.node for a in history.acks)
    return sorted(seen)


def is_expired(expiration: int | None, end_wall_s: float) -> bool:
    """Workers KV: a key is expired when ``expiration <= now``."""
    return expiration is not None and expiration <= end_wall_s


def _is_live(record: Held, end_wall_s: float) -> bool:
    return not record.deleted and not is_expired(record.expiration, end_wall_s)


def held_index(history: History) -> dict[tuple[str, str], Held]:
    """(node, key) → the record the node holds; the highest version if listed twice."""
    index: dict[tuple[str, str], Held] = {}
    for record in history.held:
        slot = (record.node, record.key)
        current = index.get(slot)
        if current is None or record.version > current.version:
            index[slot] = record
    return index


def _acks_by_key(acks: Iterable[Ack]) -> dict[str, list[Ack]]:
    grouped: dict[str, list[Ack]] = defaultdict(list)
    for ack in acks:
        grouped[ack.key].append(ack)
    return grouped


def _highest_ack(acks: Sequence[Ack]) -> Ack:
    return max(acks, key=lambda ack: ack.version)


def _purgeable_versions(history: History) -> dict[str, Version]:
    """Per key, the highest version of a record GC may have purged everywhere.

    Those are tombstones and expired puts (what GC purges), as acknowledged or as
    seen applied in a Watch stream. A node that holds nothing for a key may
    have purged such a record, and with it the right to remember any older
    write of the key.
    """
    highest: dict[str, Version] = {}

    def note(key: str, version: Version) -> None:
        if key not in highest or version > highest[key]:
            highest[key] = version

    for ack in history.acks:
        if ack.deleted or is_expired(ack.expiration, history.end_wall_s):
            note(ack.key, ack.version)
    for event in history.applied:
        if event.deleted or is_expired(event.expiration, history.end_wall_s):
            note(event.key, event.version)
    return highest


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
    """No acknowledged write is lost unless a higher version of its key is held everywhere.

    See the module docstring for the rule, including the two ways a node may
    hold nothing for a key (an expired put, a purged tombstone or expired put
    at least as new as the write).
    """
    nodes = node_names(history)
    held = held_index(history)
    purgeable = _purgeable_versions(history)
    details: list[str] = []
    lost_ops: set[int] = set()
    for index, ack in enumerate(history.acks):
        for node in nodes:
            record = held.get((node, ack.key))
            if record is not None:
                if record.version >= ack.version:
                    continue
            else:
                covered = purgeable.get(ack.key)
                if covered is not None and covered >= ack.version:
                    continue
            lost_ops.add(index)
            details.append(
                f"key {ack.key!r}: {_describe_write(ack, history.started_ns)}; "
                f"{node} holds {_describe_held(record, history.end_wall_s)}"
            )
    total = len(history.acks)
    summary = f"{len(lost_ops)} of {total} acknowledged writes lost"
    if details:
        summary += f" ({_plural(len(details), 'node record')} behind)"
    return Verdict("lost-writes", not details, summary, _capped(details))


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
    details: list[str] = []
    missing = [node for node in nodes if node not in history.final_digests]
    if missing:
        details.append(f"no final digest from {', '.join(missing)}")
    groups: dict[int, list[str]] = defaultdict(list)
    for node in nodes:
        if node in history.final_digests:
            groups[history.final_digests[node]].append(node)
    if len(groups) > 1:
        for digest, members in sorted(groups.items(), key=lambda item: -len(item[1])):
            details.append(f"digest {digest:016x} on {', '.join(members)}")
    took_s = convergence_time_s(history)
    if took_s is None:
        details.append(f"digests did not become equal within {bound_s:g} s of the heal")
    elif took_s > bound_s:
        details.append(f"digests became equal {took_s:.3f} s after the heal, over {bound_s:g} s")

    if len(groups) > 1:
        summary = f"{len(groups)} different final digests across {len(nodes)} nodes"
    elif missing:
        summary = f"final digest missing from {_plural(len(missing), 'node')}"
    elif took_s is None:
        summary = f"final digests equal, but not within {bound_s:g} s of the heal"
    elif took_s > bound_s:
        summary = (
            f"digests equal on all {len(nodes)} nodes only {took_s:.3f} s after the heal "
            f"(bound {bound_s:g} s)"
        )
    else:
        summary = (
            f"digests equal on all {len(nodes)} nodes {took_s:.3f} s after the heal "
            f"(bound {bound_s:g} s)"
        )
    return Verdict("convergence", not details, summary, _capped(details))


# ---------------------------------------------------------------------------
# Last writer wins


def lww(history: History) -> Verdict:
    """Each key's final version is the same on every node and is its highest acknowledged write."""
    nodes = node_names(history)
    held = held_index(history)
    acks_by_key = _acks_by_key(history.acks)
    attempted = {attempt.key for attempt in history.attempts}
    purgeable = _purgeable_versions(history)
    end = history.end_wall_s
    keys = sorted(set(acks_by_key) | {record.key for record in history.held})
    details: list[str] = []
    wrong_keys = 0
    for key in keys:
        records = {node: held.get((node, key)) for node in nodes}
        present = {node: record for node, record in records.items() if record is not None}
        absent = [node for node, record in records.items() if record is None]
        acked = acks_by_key.get(key)
        best = _highest_ack(acked) if acked else None
        problems: list[str] = []

        versions = {record.version for record in present.values()}
        if len(versions) > 1:
            holdings = "; ".join(
                f"{node} holds {_describe_held(records[node], end)}" for node in nodes
            )
            problems.append(f"nodes disagree: {holdings}")
        elif versions:
            (version,) = versions
            sample = next(iter(present.values()))
            if absent and _is_live(sample, end):
                problems.append(
                    f"{', '.join(absent)} hold nothing while "
                    f"{', '.join(present)} hold {_describe_held(sample, end)}"
                )
            if best is not None:
                if key in attempted:
                    if version < best.version:
                        problems.append(
                            f"all hold {_describe_held(sample, end)}, older than the highest "
                            f"acknowledged write, {_describe_write(best, history.started_ns)}"
                        )
                elif version != best.version:
                    problems.append(
                        f"all hold {_describe_held(sample, end)}, not the highest "
                        f"acknowledged write, {_describe_write(best, history.started_ns)}"
                    )
        elif best is not None:
            # Nobody holds anything: fine if what won was purged.
            if key in attempted:
                explained = key in purgeable and purgeable[key] >= best.version
            else:
                explained = best.deleted or is_expired(best.expiration, end)
            if not explained:
                problems.append(
                    f"no node holds anything, but the highest acknowledged write is "
                    f"{_describe_write(best, history.started_ns)}"
                )
        if problems:
            wrong_keys += 1
            details.extend(f"key {key!r}: {problem}" for problem in problems)
    summary = f"{wrong_keys} of {len(keys)} keys do not end at their highest acknowledged write"
    if not wrong_keys:
        summary = f"all {len(keys)} keys end at their highest acknowledged write on every node"
    return Verdict("lww", not details, summary, _capped(details))


# ---------------------------------------------------------------------------
# No resurrection


def no_resurrection(history: History) -> Verdict:
    """No deleted or expired key comes back, at the end or in any node's Watch stream."""
    nodes = node_names(history)
    held = held_index(history)
    attempted = {attempt.key for attempt in history.attempts}
    end = history.end_wall_s
    details: list[str] = []

    # Final state: keys whose highest acknowledged write made them absent.
    gone_keys = 0
    final_count = 0
    for key, acked in sorted(_acks_by_key(history.acks).items()):
        best = _highest_ack(acked)
        if not (best.deleted or is_expired(best.expiration, end)):
            continue
        gone_keys += 1
        for node in nodes:
            record = held.get((node, key))
            if record is None or not _is_live(record, end):
                continue
            if record.version > best.version and key in attempted:
                continue  # a newer, unacknowledged put may legitimately have revived it
            final_count += 1
            reason = "deleted" if best.deleted else "expired"
            details.append(
                f"key {key!r}: {reason} by {_describe_write(best, history.started_ns)}, "
                f"but {node} holds live {_describe_held(record, end)}"
            )

    # Watch order: per node and key, nothing older than an applied tombstone afterwards.
    streams: dict[tuple[str, str], list[Applied]] = defaultdict(list)
    for event in history.applied:
        streams[(event.node, event.key)].append(event)
    watch_count = 0
    for (node, key), events in sorted(streams.items()):
        tombstone: Applied | None = None
        for event in sorted(events, key=lambda applied: applied.applied_ns):
            if tombstone is not None and event.version < tombstone.version:
                watch_count += 1
                kind = "tombstone" if event.deleted else "live put"
                delay_ms = (event.applied_ns - tombstone.applied_ns) / NS_PER_MS
                details.append(
                    f"key {key!r}: {node} applied {kind} {format_version(event.version)} "
                    f"{delay_ms:.1f} ms after tombstone {format_version(tombstone.version)}"
                )
            if event.deleted and (tombstone is None or event.version > tombstone.version):
                tombstone = event

    if details:
        summary = (
            f"{final_count} live records of deleted or expired keys at the end, "
            f"{watch_count} older versions applied after a tombstone"
        )
    else:
        summary = (
            f"no deleted or expired key came back ({_plural(gone_keys, 'such key')}, "
            f"{len(history.applied)} watch events)"
        )
    return Verdict("no-resurrection", not details, summary, _capped(details))


# ---------------------------------------------------------------------------


def check_all(history: History, bound_s: float = DEFAULT_CONVERGENCE_BOUND_S) -> list[Verdict]:
    """Every checker, in a fixed order: lost-writes, convergence, lww, no-resurrection."""
    return [
        lost_writes(history),
        convergence(history, bound_s),
        lww(history),
        no_resurrection(history),
    ]
