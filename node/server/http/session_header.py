"""The ``Rumor-Session`` header: a session token on the REST API's KV routes.

A request that carries the header is served once this node can read every
write its token names (``Operations.sessions``: waiting up to 1 s, else 503
with Retry-After naming the lag); its answer carries the header back,
updated with what it read or wrote. A write answers its token whether or not
the request carried one, so a client can start a session from any write.

Bounded staleness: a read carrying ``Rumor-Max-Staleness-Ms`` is answered only
while this node knows it lags every alive member by less (else 503); every
read answers ``Rumor-Lag-Bound-Ms`` (milliseconds, or "unknown").

Every helper takes the ``Operations`` that serve the request, not the
request's app: the values routes are also answered before routing, and by a
node's workers. A worker passes a request carrying ``Rumor-Session`` or
``Rumor-Max-Staleness-Ms`` to its owner (``carries_session``), which waits and
checks with its own replica; a plain read a worker answers from its own view
reports the bound the owner published, aged (``workers.secondary_reads``), and
a write it answers carries the token of the owner's version.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from rumor.client.session_token import SessionToken
from rumor.node.core import validation
from rumor.node.core.record import RecordHeader
from rumor.node.server.operations import Operations
from rumor.node.server.sessions import answer_token, write_token

SESSION_HEADER = "Rumor-Session"
MAX_STALENESS_HEADER = "Rumor-Max-Staleness-Ms"
LAG_BOUND_HEADER = "Rumor-Lag-Bound-Ms"


def carries_session(request: web.BaseRequest) -> bool:
    """``request`` waits for a token or bounds its staleness: only a replica can say."""
    headers = request.headers
    return SESSION_HEADER in headers or MAX_STALENESS_HEADER in headers


async def session_of(operations: Operations, request: web.Request) -> SessionToken | None:
    """Wait until this node covers the request's token; the token (None: no header)."""
    raw = request.headers.get(SESSION_HEADER)
    return None if raw is None else await operations.sessions.after(raw)


async def read_session_of(operations: Operations, request: web.Request) -> SessionToken | None:
    """``session_of`` for a read, which also checks ``Rumor-Max-Staleness-Ms``."""
    after = await session_of(operations, request)
    raw = request.headers.get(MAX_STALENESS_HEADER)
    if raw is not None:
        limit = validation.integer(raw, MAX_STALENESS_HEADER)
        operations.sessions.check_staleness(limit)
    return after


def _lag(operations: Operations) -> dict[str, str]:
    bound = operations.lag_bound()
    return {} if bound is None else {LAG_BOUND_HEADER: bound}


def read_session(
    operations: Operations,
    after: SessionToken | None,
    namespace_id: str,
    results: Iterable[tuple[bytes, RecordHeader | None]],
) -> dict[str, str]:
    """The headers answering a read of ``results`` (each key and the header it read, None
    when not found or not known): the lag bound, and the session token when the request
    had one. Called in the step that read them: the headers looked up are the ones read."""
    lag = _lag(operations)
    if after is None:
        return lag
    namespace = operations.namespace_bytes(namespace_id)
    token = operations.sessions.read_token(after, namespace, results)
    return {SESSION_HEADER: token, **lag}


def list_session(
    operations: Operations, after: SessionToken | None, headers: Iterable[RecordHeader]
) -> dict[str, str]:
    lag = _lag(operations)
    return lag if after is None else {SESSION_HEADER: answer_token(after, headers), **lag}


def write_session(after: SessionToken | None, origin: int, seq: int) -> dict[str, str]:
    if not seq:
        return {SESSION_HEADER: (after or SessionToken()).encode()}
    return {SESSION_HEADER: write_token(after, origin, seq)}
