"""The ``Rumor-Session`` header: a session token on the REST API's KV routes.

A request that carries the header is served once this node can read every
write its token names (``Operations.sessions``: waiting up to 1 s, else 503
with Retry-After naming the lag); its answer carries the header back,
updated with what it read or wrote. A write answers its token whether or not
the request carried one, so a client can start a session from any write.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from rumor.client.session_token import SessionToken
from rumor.node.core.record import RecordHeader
from rumor.node.server.http.request import operations_of
from rumor.node.server.sessions import answer_token, write_token

SESSION_HEADER = "Rumor-Session"


async def session_of(request: web.Request) -> SessionToken | None:
    """Wait until this node covers the request's token; the token (None: no header)."""
    return await operations_of(request).sessions.after(request.headers.get(SESSION_HEADER, ""))


def read_session(
    request: web.Request,
    after: SessionToken | None,
    namespace_id: str,
    keys: Iterable[bytes],
) -> dict[str, str]:
    """The header answering a read of ``keys`` (none without a session). Called in the
    step that read them: the headers looked up are the ones read."""
    if after is None:
        return {}
    operations = operations_of(request)
    namespace = operations.namespace_bytes(namespace_id)
    token = operations.sessions.read_token(after, namespace, [(key, None) for key in keys])
    return {SESSION_HEADER: token}


def list_session(after: SessionToken | None, headers: Iterable[RecordHeader]) -> dict[str, str]:
    return {} if after is None else {SESSION_HEADER: answer_token(after, headers)}


def write_session(after: SessionToken | None, origin: int, seq: int) -> dict[str, str]:
    if not seq:
        return {SESSION_HEADER: (after or SessionToken()).encode()}
    return {SESSION_HEADER: write_token(after, origin, seq)}
