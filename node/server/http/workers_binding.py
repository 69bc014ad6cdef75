"""The Workers KV binding protocol of workerd, served on the node's HTTP listener.

workerd (the open-source Workers runtime) runs ``env.NS.put/get/list/delete``
as HTTP subrequests to a service named in its config; pointed at a node, the
calls land here and run the same ``Operations`` as gRPC and the REST API:

- ``PUT /<key>?urlencoded=true[&expiration=N][&expiration_ttl=N]``: the body is
  the value (streams arrive chunked), metadata JSON in ``CF-KV-Metadata``;
- ``GET /<key>?urlencoded=true[&cache_ttl=N]``: 200 with the raw value (and
  ``CF-KV-Metadata``, ``CF-Expiration``), 404 when missing (JS gets null);
- ``DELETE /<key>?urlencoded=true``: 200, also for a missing key;
- ``GET /?key_count_limit=&prefix=&cursor=``: ``{keys: [{name, expiration?,
  metadata?}], list_complete, cursor?}``, metadata as JSON text (workerd parses it);
- ``POST /bulk/get`` with ``{keys, type?, withMetadata?, cacheTtl?}``.

Sessions, as on the REST API (``session_header``): a request carrying
``Rumor-Session`` is served once this node covers the token (else 503 with
``Retry-After``, never older data) and its answer carries the token back,
updated with what it read or wrote; every write answers the token of its
version; a read carrying ``Rumor-Max-Staleness-Ms`` is bounded, and every
read answers ``Rumor-Lag-Bound-Ms``. workerd's binding sends neither header
(its config sets a binding's headers once): they serve other clients of the
protocol, and a Worker's requests stay as they are.

A request belongs to the binding when it carries ``NAMESPACE_HEADER`` (the
workerd config injects it, with the API token, whose scopes hold here as on
every API: a read-only token's ``put`` is ``KV PUT failed: 403 ...``): the
gateway checks that before any routing, so keys named ``metrics`` or
``client/v4/x`` stay keys. Keys come from the raw path with plain
percent-decoding (``+`` stays ``+``, ``%2F`` is a ``/`` inside the key); in
the list query ``+`` is a space, as workerd encodes it.

workerd turns any other status into the JS error ``KV <OP> failed: <status>
<reason phrase>`` and never shows the body, so the message goes in the reason
phrase, with control characters escaped (a reason cannot hold a newline, and
keys may).
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from aiohttp import web

from rumor.node.core import validation
from rumor.node.core.errors import RumorError
from rumor.node.core.record import RecordHeader
from rumor.node.server import auth
from rumor.node.server.admission import ByteBudget
from rumor.node.server.errors import status_of
from rumor.node.server.http.body import read_body
from rumor.node.server.http.bulk_get import bulk_get_values
from rumor.node.server.http.request import client_gone, decode_key, drain_or_close, refuse
from rumor.node.server.http.session_header import (
    list_session,
    read_session,
    read_session_of,
    session_of,
    write_session,
)
from rumor.node.server.http.values import INLINE_VALUE_BYTES, read_found
from rumor.node.server.log_throttle import LogThrottle
from rumor.node.server.operations import Operations, PutItem

NAMESPACE_HEADER = "Rumor-Namespace"
METADATA_HEADER = "CF-KV-Metadata"
EXPIRATION_HEADER = "CF-Expiration"
BULK_GET_PATH = "/bulk/get"
SEND_CHUNK_BYTES = 256 * 1024

_log = structlog.get_logger(__name__)
_throttled = LogThrottle(_log)


def is_binding_request(request: web.Request) -> bool:
    return NAMESPACE_HEADER in request.headers


def _path(request: web.Request) -> str:
    return request.raw_path.split("?", 1)[0]


def route_name(request: web.Request) -> str:
    """The name ``observe`` records: binding.get|put|delete|list|bulk_get|unmatched."""
    path, method = _path(request), request.method
    if path == "/":
        return "binding.list" if method == "GET" else "binding.unmatched"
    if path == BULK_GET_PATH and method == "POST":
        return "binding.bulk_get"
    return {"GET": "binding.get", "PUT": "binding.put", "DELETE": "binding.delete"}.get(
        method, "binding.unmatched"
    )


def reason_phrase(message: str) -> str:
    """``message`` fit for an HTTP reason phrase: control characters as escapes."""
    return "".join(
        char if char.isprintable() or char == " " else char.encode("unicode_escape").decode()
        for char in message
    )


def failure(status: int, message: str) -> web.Response:
    response = web.Response(
        status=status, reason=reason_phrase(message), text=message, content_type="text/plain"
    )
    if status == 503:
        response.headers["Retry-After"] = "1"  # a lagging or busy node: soon
    return response


async def answer(
    request: web.Request,
    operations: Operations,
    denied: int | None,
    reads: ByteBudget | None = None,
) -> web.StreamResponse:
    """Answer a binding request; ``denied``: the status its token earned (401/403), if refused.

    A client that goes away mid-request raises ConnectionError out of here, for
    the gateway to count (it is no error).
    """
    if denied is not None:
        return failure(denied, auth.DENIED_MESSAGE)
    try:
        return await _dispatch(request, operations, reads or ByteBudget(2**62, 0))
    except RumorError as error:
        await drain_or_close(request)
        refused = failure(status_of(error).http_status, str(error))
        if refused.status == 503:
            refused.headers["Retry-After"] = "1"  # a busy node: soon
        return await refuse(request, refused)
    except web.HTTPException as error:
        return failure(error.status, error.reason)
    except Exception as error:
        if client_gone(request, error):
            raise
        _throttled.error(
            "binding.internal_error", (_path(request), type(error).__name__), exc_info=error
        )
        return failure(500, "internal error")


async def _dispatch(
    request: web.Request, operations: Operations, reads: ByteBudget
) -> web.StreamResponse:
    namespace_id = request.headers[NAMESPACE_HEADER]
    path, method = _path(request), request.method
    if path == "/":
        if method != "GET":
            raise web.HTTPMethodNotAllowed(method, ["GET"])
        return await _list(request, operations, namespace_id)
    if path == BULK_GET_PATH and method == "POST":
        return await _bulk_get(request, operations, namespace_id, reads)
    key = decode_key(path[1:])
    if method == "GET":
        return await _get(request, operations, namespace_id, key, reads)
    if method == "PUT":
        return await _put(request, operations, namespace_id, key)
    if method == "DELETE":
        after = await session_of(operations, request)
        applied = await operations.delete(namespace_id, key, gather=True)
        return web.Response(headers=write_session(after, applied.header.origin, applied.header.seq))
    raise web.HTTPMethodNotAllowed(method, ["GET", "PUT", "DELETE"])


def _int_query(request: web.Request, name: str) -> int | None:
    return validation.query_seconds(request.query.get(name), name)


def _metadata_header(metadata: bytes) -> str:
    # ASCII-only JSON (\\u escapes) so the header survives any byte handling on the way.
    return json.dumps(json.loads(metadata), separators=(",", ":"))


async def _send(request: web.Request, body: bytes, headers: dict[str, str]) -> web.StreamResponse:
    """Write ``body`` in chunks, each awaiting the socket (a slow reader holds no copies)."""
    response = web.StreamResponse(headers=headers)
    response.content_length = len(body)
    await response.prepare(request)
    view = memoryview(body)
    for start in range(0, len(view), SEND_CHUNK_BYTES):
        await response.write(view[start : start + SEND_CHUNK_BYTES])
    await response.write_eof()
    return response


async def _get(
    request: web.Request, operations: Operations, namespace_id: str, key: bytes, reads: ByteBudget
) -> web.StreamResponse:
    cache_ttl = request.query.get("cache_ttl") if request.query_string else None
    after = await read_session_of(operations, request)
    found, reservation = await read_found(operations, reads, namespace_id, key, cache_ttl)
    try:
        session = read_session(
            operations, after, namespace_id, [(key, None if found is None else found.header)]
        )
        if found is None:
            return web.Response(status=404, reason="Not Found", headers=session)
        headers = {"Content-Type": "application/octet-stream", **session}
        if found.header.metadata is not None:
            headers[METADATA_HEADER] = _metadata_header(found.header.metadata)
        if found.header.expiration:
            headers[EXPIRATION_HEADER] = str(found.header.expiration)
        if len(found.value) <= INLINE_VALUE_BYTES:
            return web.Response(body=found.value, headers=headers)  # one write, never waits
        return await _send(request, found.value, headers)
    finally:
        reservation.release()


async def _read_value(request: web.Request) -> bytes:
    """The body, counted to the end when it is too large so the error gives its length."""
    value, length = await read_body(request, validation.MAX_VALUE_BYTES)
    validation.value_length(length)
    return value


async def _put(
    request: web.Request, operations: Operations, namespace_id: str, key: bytes
) -> web.StreamResponse:
    raw_metadata = request.headers.get(METADATA_HEADER)
    # Everything that needs no body is checked before the body is read.
    expiration = _int_query(request, "expiration")
    expiration_ttl = _int_query(request, "expiration_ttl")
    validation.key(key)
    value = await _read_value(request)
    item = PutItem(
        key=key,
        value=value,
        expiration=expiration,
        expiration_ttl=expiration_ttl,
        metadata=None if raw_metadata is None else raw_metadata.encode("utf-8", "surrogateescape"),
    )
    after = await session_of(operations, request)
    applied = await operations.put(namespace_id, item, gather=True)
    return web.Response(headers=write_session(after, applied.header.origin, applied.header.seq))


def _key_json(name: bytes, header: RecordHeader) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name.decode()}
    if header.expiration:
        entry["expiration"] = header.expiration
    if header.metadata is not None:
        entry["metadata"] = header.metadata.decode()  # JSON text: workerd parses it
    return entry


async def _list(
    request: web.Request, operations: Operations, namespace_id: str
) -> web.StreamResponse:
    after = await read_session_of(operations, request)
    listing = await operations.list_keys(
        namespace_id,
        validation.query_bytes(request.raw_path.partition("?")[2], "prefix"),
        _int_query(request, "key_count_limit"),
        request.query.get("cursor", "").encode(),
    )
    body: dict[str, Any] = {
        "keys": [_key_json(name, header) for name, header in listing.keys],
        "list_complete": listing.complete,
    }
    if not listing.complete:
        body["cursor"] = listing.cursor.decode()
    headers = list_session(operations, after, (header for _, header in listing.keys))
    return web.json_response(body, dumps=_dumps, headers=headers)


async def _bulk_get(
    request: web.Request, operations: Operations, namespace_id: str, reads: ByteBudget
) -> web.StreamResponse:
    raw, _ = await read_body(request)
    body = validation.json_body(raw)
    keys = body.get("keys") if isinstance(body, dict) else None
    names = [k.encode() for k in keys if isinstance(k, str)] if isinstance(keys, list) else []
    after = await read_session_of(operations, request)
    reservation = await reads.reserve(operations.value_bytes(namespace_id, names))
    try:
        values = await bulk_get_values(operations, namespace_id, body)
        session = read_session(operations, after, namespace_id, [(name, None) for name in names])
        encoded = _dumps(values).encode()
        del values
        reservation.settle(len(encoded))
        headers = {"Content-Type": "application/json; charset=utf-8", **session}
        return await _send(request, encoded, headers)
    finally:
        reservation.release()


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
