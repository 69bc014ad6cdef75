"""Sessions: reads and writes after a session token, and the tokens answers carry.

A request's ``after`` is a session token (``rumor.client.session_token``):
per origin, the highest seq the client wrote or read. The node serves the
request once it can read every write the token names (its applied
watermarks cover them, ``replica.lacking``). Until then it waits — up to the
call's deadline, and at most ``SESSION_WAIT_S`` — while replication pulls what
is missing at once (``ReplicationHooks.wait_for_coverage``); then it fails
with Unavailable naming how far behind it is. It never answers older data.

Every answer of a session request carries the token updated with what it
returned or wrote; every write answers the token of its own version.

Bounded staleness: a read with ``max_staleness_ms`` is answered only while
this node knows it lags every alive member by less (``lag_bound_ms``, from
the engine's ``Staleness``), else Unavailable naming its bound; every read
answer reports the bound (``LAG_BOUND_KEY``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from rumor.client.session_token import EMPTY, InvalidToken, SessionToken, encode_one
from rumor.node.core.errors import InvalidRequest, Unavailable
from rumor.node.core.record import RecordHeader
from rumor.node.replication import Replica

# The longest a session request waits for this node to catch up, whatever its deadline.
SESSION_WAIT_S = 1.0
# Kept from the caller's deadline, so the clear error arrives before the deadline does.
DEADLINE_MARGIN_S = 0.05


# The trailing gRPC metadata key (and, capitalised, the HTTP header) of a read's lag bound.
LAG_BOUND_KEY = "rumor-lag-bound-ms"


class CoverageWait(Protocol):
    async def wait_for_coverage(self, wanted: Mapping[int, int], timeout_s: float) -> None:
        """Return once every write ``wanted`` names is readable here; Unavailable if not."""
        ...

    def lag_bound_ms(self) -> int | None:
        """The most this node may lag any alive member (None: it cannot say)."""
        ...


# Recently parsed tokens by their text, and the text of each (by the token's id, for the
# tokens held here): a session sends the same token read after read, and an answer that
# read nothing newer carries it back unchanged, so neither is decoded nor encoded again.
# Cleared whole when full; a token in use elsewhere stays valid, only uncached.
MAX_PARSED = 1024
_parsed: dict[str, SessionToken] = {}
_texts: dict[int, str] = {}


def parse(after: str) -> SessionToken | None:
    """The token of a request's ``after``; None for a plain request (empty)."""
    if not after:
        return None
    token = _parsed.get(after)
    if token is not None:
        return token
    try:
        token = SessionToken.decode(after)
    except InvalidToken as error:
        raise InvalidRequest(f"Invalid session token: {error}.") from None
    if len(_parsed) >= MAX_PARSED:
        _parsed.clear()
        _texts.clear()
    _parsed[after] = token
    _texts[id(token)] = after
    return token


class Sessions:
    def __init__(self, replica: Replica, wait: CoverageWait) -> None:
        self.replica = replica
        self.wait = wait

    def covered(self, token: SessionToken) -> bool:
        """This node can read every write ``token`` names, now."""
        return not token.marks or not self.replica.lacking(token.marks)

    async def after(self, after: str, time_remaining_s: float | None = None) -> SessionToken | None:
        """Wait until the writes ``after`` names are readable here; the parsed token.

        ``time_remaining_s`` is the call's deadline (None: none)."""
        token = parse(after)
        if token is None or self.covered(token):
            return token
        bound = SESSION_WAIT_S
        if time_remaining_s is not None:
            bound = min(bound, max(0.0, time_remaining_s - DEADLINE_MARGIN_S))
        await self.wait.wait_for_coverage(token.marks, bound)
        return token

    def lag_bound(self) -> str:
        """The lag bound as reported with every read: milliseconds, or "unknown"."""
        bound = self.wait.lag_bound_ms()
        return "unknown" if bound is None else str(bound)

    def check_staleness(self, max_staleness_ms: int | None) -> None:
        """Unavailable unless this node knows it lags every alive member by less."""
        if max_staleness_ms is None:
            return
        bound = self.wait.lag_bound_ms()
        if bound is None:
            raise Unavailable(
                f"this node cannot bound how far behind the other members it is"
                f" (max_staleness_ms={max_staleness_ms}); retry, or read from another node"
            )
        if bound >= max_staleness_ms:
            raise Unavailable(
                f"this node may be up to {bound} ms behind the other members"
                f" (max_staleness_ms={max_staleness_ms}); retry, or read from another node"
            )

    def read_token(
        self,
        token: SessionToken | None,
        namespace: bytes,
        results: Iterable[tuple[bytes, RecordHeader | None]],
    ) -> str:
        """The token a read answers, from each key read and its live header (None: not
        found, where a tombstone's version counts: reading the delete is reading a write)."""
        headers = [
            header if header is not None else self.replica.header(namespace, key)
            for key, header in results
        ]
        return answer_token(token, headers)


def answer_token(token: SessionToken | None, headers: Iterable[RecordHeader | None]) -> str:
    """The token an answer carries: ``token`` and the versions it returned or wrote."""
    pairs = [(h.origin, h.seq) for h in headers if h is not None]
    if token is not None:
        marks = token.marks
        text = _texts.get(id(token))
        if text is not None and all(marks.get(origin, 0) >= seq for origin, seq in pairs):
            return text  # nothing newer than the request's own token: the same text
    return (token or EMPTY).merge(SessionToken.of(pairs)).encode()


def write_token(token: SessionToken | None, origin: int, seq: int) -> str:
    """The token a write answers: its own version, with the request's ``after``."""
    if token is None or not token.marks:
        return encode_one(origin, seq)
    return token.merge(SessionToken({origin: seq})).encode()
