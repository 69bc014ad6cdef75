"""The four session guarantees (Bayou), per key, over one client's sequence of calls.

A client issues calls one after another, each on any node. Within a key,
versions compare as LWW orders them ((hlc, origin), greater wins):

- read-your-writes: a read returns the client's latest acknowledged write of
  the key, or something newer;
- monotonic reads: a read returns nothing older than the client's earlier
  reads of the key returned;
- monotonic writes: the client's later write of the key is ordered after its
  earlier one (else the later write loses: it is undone);
- writes-follow-reads: the client's write of the key is ordered after what
  its earlier reads of the key returned.

A read that found nothing is judged against the deletes of the key: it obeys
a guarantee that asks for at least version v when some delete of the key is
at least v, or of unknown version (a delete the issuer got no answer for). A
read whose version is unknown (it returned a write nobody was told of), an
unanswered read and a write not acknowledged are not judged and change
nothing. Guarantees across keys are not judged here: Rumor's only order
between keys is that of the tokens, which the per-key checks exercise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from rumor.experiments.properties.observation import Version

NAME = "session-guarantees"


class Guarantee(StrEnum):
    READ_YOUR_WRITES = "read-your-writes"
    MONOTONIC_READS = "monotonic-reads"
    MONOTONIC_WRITES = "monotonic-writes"
    WRITES_FOLLOW_READS = "writes-follow-reads"


class Kind(StrEnum):
    READ = "read"
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class ClientCall:
    """One call of a client, in the client's order.

    A read's ``version`` is the version it returned (None: nothing found, or
    not known); a write's is the version it made (None: not acknowledged).
    """

    client: int
    kind: Kind
    key: str
    version: Version | None
    answered: bool  # a read got an answer; a write was acknowledged
    found: bool = False  # a read returned a value
    index: int = 0  # its place in the observer's own record, to name it in messages


@dataclass(frozen=True, slots=True)
class Violation:
    guarantee: Guarantee
    call: ClientCall  # the call that broke it
    wanted: Version  # the least version the guarantee asked for


@dataclass(slots=True)
class _KeyState:
    written: Version | None = None  # the client's latest acknowledged write (its highest)
    read: Version | None = None  # the highest version its reads returned


def _at_least(bound: Version | None, call: ClientCall, deletes: Sequence[Version | None]) -> bool:
    if bound is None:
        return True
    if call.found:
        return call.version is not None and call.version >= bound
    return any(version is None or version >= bound for version in deletes)


def violations(
    calls: Iterable[ClientCall], deletes: Mapping[str, Sequence[Version | None]]
) -> list[Violation]:
    """Every call that breaks a guarantee, in the order of ``calls`` (grouped by client
    only through their order: each client's calls must be in the order it made them).

    ``deletes``: per key, the version of every delete issued by anyone (None: the
    issuer got no answer)."""
    state: dict[tuple[int, str], _KeyState] = {}
    out: list[Violation] = []
    for call in calls:
        if not call.answered:
            continue
        key = state.setdefault((call.client, call.key), _KeyState())
        if call.kind is Kind.READ:
            if call.found and call.version is None:
                continue  # returned a write nobody was told of: not judged
            gone = deletes.get(call.key, ())
            if not _at_least(key.written, call, gone):
                assert key.written is not None
                out.append(Violation(Guarantee.READ_YOUR_WRITES, call, key.written))
            if not _at_least(key.read, call, gone):
                assert key.read is not None
                out.append(Violation(Guarantee.MONOTONIC_READS, call, key.read))
            if call.found and call.version is not None:
                key.read = max(key.read or call.version, call.version)
            continue
        version = call.version
        if version is None:
            continue
        if key.written is not None and version < key.written:
            out.append(Violation(Guarantee.MONOTONIC_WRITES, call, key.written))
        if key.read is not None and version < key.read:
            out.append(Violation(Guarantee.WRITES_FOLLOW_READS, call, key.read))
        key.written = max(key.written or version, version)
    return out


def counts(found: Iterable[Violation]) -> dict[Guarantee, int]:
    """Violations per guarantee (every guarantee listed, 0 when none)."""
    tally = dict.fromkeys(Guarantee, 0)
    for violation in found:
        tally[violation.guarantee] += 1
    return tally
