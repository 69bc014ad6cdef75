"""The ``Rumor-Session`` header: a session token on the REST API's KV routes.

A request that carries the header is served once this node can read every
write its token names (``Operations.sessions``: waiting up to 1 s, else 503
with Retry-After naming the lag); its answer carries the header back,
updated with what it read or wrote. A write answers its token whether or not
the request carried one, so a client can start a session from any write.

Bounded staleness: a read carrying ``Rumor-Max-Staleness-Ms`` is answered only
while this node knows it lags every alive member by less (else 503); every
read answers ``Rumor-Lag-Bound-Ms`` (milliseconds, or "unknown").
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from rumor.client.session_token import SessionToken
from rumor.node.core import validation
from rumor.node.core.record import RecordHeader
from rumor.node.server.http.request import operations_of
from rumor.node.server.sessions import answer_token, write_token

SESSION_HEADER = "Rumor-Session"
MAX_STALENESS_HEADER = "Rumor-Max-Staleness-Ms"
LAG_BOUND_HEADER = "Rumor-Lag-Bound-Ms"


async def session_of(request: web.Request) -> SessionToken | None:
    """Wait until this node covers the request's token; the token (None: no header)."""
    return await operations_of(request).sessions.after(request.headers.get(SESSION_HEADER, ""))


async def read_session_of(request: web.Request) -> SessionToken | None:
    """``session_of`` for a read, which also checks ``Rumor-Max-Staleness-Ms``."""
    after = await session_of(request)
    raw = request.headers.get(MAX_STALENESS_HEADER)
    if raw is not None:
        limit = validation.integer(raw, MAX_STALENESS_HEADER)
        operations_of(request).sessions.check_staleness(limit)
    return after


def read_session(
    request: web.Request,
    after: SessionToken | None,
    namespace_id: str,
    keys: Iterable[bytes],
) -> dict[str, str]:
    """The headers answering a read of ``keys``: the lag bound, and the session token when
    the request had one. Called in the step that read them: the headers looked up are
    the ones read."""
    operations = operations_of(request)
    lag = {LAG_BOUND_HEADER: operations.sessions.lag_bound()}
    if after is None:
        return lag
    namespace = operations.namespace_bytes(namespace_id)
    token = operations.sessions.read_token(after, namespace, [(key, None) for key in keys])
    return {SESSION_HEADER: token, **lag}


def list_session(
    request: web.Request, after: SessionToken | None, headers: Iterable[RecordHeader]
) -> dict[str, str]:
    lag = {LAG_BOUND_HEADER: operations_of(request).sessions.lag_bound()}
    return lag if after is None else {SESSION_HEADER: answer_token(after, headers), **lag}


def write_session(after: SessionToken | None, origin: int, seq: int) -> dict[str, str]:
    if not seq:
        return {SESSION_HEADER: (after or SessionToken()).encode()}
    return {SESSION_HEADER: write_token(after, origin, seq)}
