"""The Cloudflare-compatible HTTP gateway: the Workers KV part of Cloudflare's REST API v4.

Every route calls the same ``Operations`` as the gRPC service; errors of
``core.errors`` are mapped by ``errors.status_of`` (the one error map) onto the
HTTP status and Cloudflare's error code, inside Cloudflare's envelope
``{success, errors: [{code, message}], messages, result, result_info}``.
Keys are taken from the raw path and percent-decoded to bytes, so ``a%2Fb`` is
the key ``a/b``.

Before any route runs, the middleware refuses cross-site use (``http_guard``:
Origin and Host, 403) and requests beyond the client-call budget (503); JSON
bodies are taken only as ``application/json`` (415). Values are sent in
chunks, holding their bytes against the node's in-flight read budget until
the last chunk is written, so slow readers cannot pile values up in memory. A
multipart body is counted against the body limit as it streams (aiohttp's
``client_max_size`` does not see multipart parts): a part beyond it is
refused when the limit is crossed, and a value part is buffered only up to
the value limit.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote_to_bytes

import structlog
from aiohttp import BodyPartReader, web
from aiohttp.typedefs import Middleware

from rumor.node.core import validation
from rumor.node.core.errors import (
    InvalidRequest,
    RumorError,
    UnsupportedMediaType,
    ValueTooLarge,
)
from rumor.node.core.record import RecordHeader
from rumor.node.server import workers_binding
from rumor.node.server.admission import ByteBudget, CallBudget
from rumor.node.server.bulk_get import bulk_get_values
from rumor.node.server.errors import status_of
from rumor.node.server.http_guard import HTTP_FORBIDDEN, HttpGuard
from rumor.node.server.log_throttle import LogThrottle
from rumor.node.server.operations import NamespaceInfo, Operations, PutItem

PREFIX = "/client/v4/accounts/{account_id}/storage/kv/namespaces"
MAX_BODY_BYTES = 128 * 1024 * 1024
SEND_CHUNK_BYTES = 256 * 1024  # a value is written in chunks, each awaiting the socket
PUBLIC_PATHS = ("/healthz", "/metrics")
CONSOLE_ROOT = "/ui"
CODE_AUTH = 10000
CODE_INTERNAL = 10000
CODE_KEY_NOT_FOUND = 10009
# Rumor has no accounts: any account id in a path is accepted; this one is offered.
LOCAL_ACCOUNT_ID = "0" * 32
LOCAL_ACCOUNT_NAME = "Rumor"
# The raw path split on "/" (at most 10 times): [..., "namespaces", ns, "values", key].
_KEY_SEGMENT = 10

Authorize = Callable[[str | None], int | None]
Observe = Callable[[str, str, int, float], None]
MetricsText = Callable[[], tuple[bytes, str]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_log = structlog.get_logger(__name__)
_throttled = LogThrottle(_log)
_OPERATIONS = web.AppKey("operations", Operations)
_READS = web.AppKey("reads", ByteBudget)


# ---- envelope -----------------------------------------------------------


def envelope(result: Any = None, *, result_info: Any = None, status: int = 200) -> web.Response:
    body: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return web.json_response(body, status=status, dumps=_dumps)


def failure(status: int, code: int, message: str) -> web.Response:
    body = {
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": None,
    }
    return web.json_response(body, status=status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# ---- request parsing ----------------------------------------------------


def _operations(request: web.Request) -> Operations:
    return request.app[_OPERATIONS]


def _namespace_id(request: web.Request) -> str:
    return request.match_info["namespace_id"]


def _raw_key(request: web.Request) -> bytes:
    """The key of a values/metadata route, percent-decoded from the raw path."""
    path = request.raw_path.split("?", 1)[0]
    parts = path.split("/", _KEY_SEGMENT)
    return unquote_to_bytes(parts[_KEY_SEGMENT]) if len(parts) > _KEY_SEGMENT else b""


def _int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    return validation.integer(raw, name)


async def json_body(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            "The request body must be JSON sent as Content-Type: application/json;"
            f" got {request.content_type!r}."
        )
    return validation.json_body(await request.read())


async def send_value(
    request: web.Request, value: bytes, headers: dict[str, str]
) -> web.StreamResponse:
    """Write ``value`` in chunks, each awaiting the socket (a slow reader holds no copies)."""
    response = web.StreamResponse(headers=headers)
    response.content_length = len(value)
    await response.prepare(request)
    view = memoryview(value)
    for start in range(0, len(view), SEND_CHUNK_BYTES):
        await response.write(view[start : start + SEND_CHUNK_BYTES])
    await response.write_eof()
    return response


async def read_value(
    request: web.Request, operations: Operations, namespace_id: str, key: bytes
) -> tuple[Any, Any]:
    """Wait for room in the read budget, read ``key``; (found or None, the reservation)."""
    reads = request.app[_READS]
    reservation = await reads.reserve(operations.value_bytes(namespace_id, [key]))
    try:
        found = operations.get(namespace_id, key, cache_ttl=_cache_ttl(request))
    except BaseException:
        reservation.release()
        raise
    reservation.settle(0 if found is None else len(found.value))
    return found, reservation


def _metadata_json(raw: bytes | None) -> Any:
    return None if raw is None else json.loads(raw)


def _namespace_json(info: NamespaceInfo) -> dict[str, Any]:
    return {"id": info.id, "title": info.title, "supports_url_encoding": True}


# ---- namespaces ---------------------------------------------------------


async def create_namespace(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    title = body.get("title") if isinstance(body, dict) else None
    if not isinstance(title, str):
        raise InvalidRequest('The request body must be {"title": "..."}.')
    return envelope(_namespace_json(await _operations(request).create_namespace(title)))


async def list_namespaces(request: web.Request) -> web.StreamResponse:
    page = validation.page(_int_param(request, "page"))
    per_page = validation.per_page(_int_param(request, "per_page"))
    order = request.query.get("order", "id")
    direction = request.query.get("direction", "asc")
    if order not in ("id", "title"):
        raise InvalidRequest(f'Invalid order "{order}". Order by "id" or "title".')
    if direction not in ("asc", "desc"):
        raise InvalidRequest(f'Invalid direction "{direction}". Use "asc" or "desc".')
    infos = sorted(
        _operations(request).list_namespaces(),
        key=lambda info: (info.title, info.id) if order == "title" else (info.id, info.title),
        reverse=direction == "desc",
    )
    chosen = infos[(page - 1) * per_page : page * per_page]
    return envelope(
        [_namespace_json(info) for info in chosen],
        result_info={
            "page": page,
            "per_page": per_page,
            "count": len(chosen),
            "total_count": len(infos),
        },
    )


async def get_namespace(request: web.Request) -> web.StreamResponse:
    return envelope(_namespace_json(_operations(request).get_namespace(_namespace_id(request))))


async def rename_namespace(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    title = body.get("title") if isinstance(body, dict) else None
    if not isinstance(title, str):
        raise InvalidRequest('The request body must be {"title": "..."}.')
    info = await _operations(request).rename_namespace(_namespace_id(request), title)
    return envelope(_namespace_json(info))


async def delete_namespace(request: web.Request) -> web.StreamResponse:
    await _operations(request).delete_namespace(_namespace_id(request))
    return envelope({})


# ---- keys ---------------------------------------------------------------


def _key_json(name: bytes, header: RecordHeader) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name.decode()}
    if header.expiration:
        entry["expiration"] = header.expiration
    if header.metadata is not None:
        entry["metadata"] = json.loads(header.metadata)
    return entry


async def list_keys(request: web.Request) -> web.StreamResponse:
    limit = validation.http_list_limit(_int_param(request, "limit"))
    listing = await _operations(request).list_keys(
        _namespace_id(request),
        request.query.get("prefix", "").encode(),
        limit,
        request.query.get("cursor", "").encode(),
    )
    keys = [_key_json(name, header) for name, header in listing.keys]
    return envelope(keys, result_info={"count": len(keys), "cursor": listing.cursor.decode()})


# ---- values -------------------------------------------------------------


def _key_not_found() -> web.Response:
    return failure(404, CODE_KEY_NOT_FOUND, "key not found")


def _cache_ttl(request: web.Request) -> str | None:
    return request.query.get("cache_ttl") or None


async def get_value(request: web.Request) -> web.StreamResponse:
    found, reservation = await read_value(
        request, _operations(request), _namespace_id(request), _raw_key(request)
    )
    try:
        if found is None:
            return _key_not_found()
        headers = {"Content-Type": "application/octet-stream"}
        if found.header.expiration:
            headers["expiration"] = str(found.header.expiration)
        return await send_value(request, found.value, headers)
    finally:
        reservation.release()


def _part_metadata(raw: bytes, content_type: str) -> bytes:
    """A multipart ``metadata`` part: JSON text; a text/plain part that is not JSON is a string."""
    if content_type.startswith("text/plain"):
        try:
            json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            try:
                text = raw.decode()
            except UnicodeDecodeError as exc:
                raise InvalidRequest("Metadata must be valid JSON.") from exc
            return validation.metadata_value(text)
    return raw


class _BodyCounter:
    """The bytes of a multipart body read so far, refused past ``MAX_BODY_BYTES``."""

    def __init__(self) -> None:
        self.read = 0

    def add(self, size: int) -> None:
        self.read += size
        if self.read > MAX_BODY_BYTES:
            raise ValueTooLarge(f"The request body exceeds the limit of {MAX_BODY_BYTES} bytes.")


async def _read_part(part: BodyPartReader, counter: _BodyCounter, keep: int) -> tuple[bytes, int]:
    """The first ``keep`` bytes of ``part`` and its whole length (counted, not buffered)."""
    chunks = bytearray()
    length = 0
    while chunk := await part.read_chunk():
        counter.add(len(chunk))
        length += len(chunk)
        if length <= keep:
            chunks += chunk
    return bytes(chunks), length


async def _multipart_value(request: web.Request) -> tuple[bytes, int, bytes | None]:
    """The ``value`` part (buffered up to the value limit), its length and ``metadata``."""
    counter = _BodyCounter()
    value: bytes | None = None
    length = 0
    metadata: bytes | None = None
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise InvalidRequest("Nested multipart bodies are not supported.")
            if part.name == "value":
                value, length = await _read_part(part, counter, validation.MAX_VALUE_BYTES)
            elif part.name == "metadata":
                raw, size = await _read_part(part, counter, validation.MAX_METADATA_BYTES * 8)
                if size > len(raw):
                    raise ValueTooLarge(
                        f"Metadata length of {size} exceeds limit of"
                        f" {validation.MAX_METADATA_BYTES}."
                    )
                content_type = part.headers.get("Content-Type", "application/json")
                metadata = _part_metadata(raw, content_type)
            else:
                await _read_part(part, counter, 0)
    except (ValueError, AssertionError, LookupError, TypeError) as exc:
        if isinstance(exc, RumorError):
            raise
        raise InvalidRequest(f"The multipart body is malformed: {exc}") from exc
    if value is None:
        raise InvalidRequest('The multipart body must have a "value" part.')
    return value, length, metadata


async def put_value(request: web.Request) -> web.StreamResponse:
    metadata: bytes | None = None
    if request.content_type.startswith("multipart/"):
        value, length, metadata = await _multipart_value(request)
        validation.value_length(length)
    else:
        value = await request.read()
    validation.value_length(len(value))
    item = PutItem(
        key=_raw_key(request),
        value=value,
        expiration=_int_param(request, "expiration"),
        expiration_ttl=_int_param(request, "expiration_ttl"),
        metadata=metadata,
    )
    await _operations(request).put(_namespace_id(request), item)
    return envelope({})


async def delete_value(request: web.Request) -> web.StreamResponse:
    await _operations(request).delete(_namespace_id(request), _raw_key(request))
    return envelope({})


async def get_metadata(request: web.Request) -> web.StreamResponse:
    found, reservation = await read_value(
        request, _operations(request), _namespace_id(request), _raw_key(request)
    )
    reservation.release()  # only the metadata is sent
    if found is None:
        return _key_not_found()
    return envelope(_metadata_json(found.header.metadata))


# ---- bulk ---------------------------------------------------------------


def _bulk_item(index: int, raw: Any) -> PutItem:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"Bulk item {index} must be an object with a key and a value.")
    key, value = raw.get("key"), raw.get("value")
    if not isinstance(key, str) or not isinstance(value, str):
        raise InvalidRequest(f"Bulk item {index} must have a string key and a string value.")
    if raw.get("base64"):
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequest(f"Bulk item {index} has a value that is not base64.") from exc
    else:
        data = value.encode()
    expiration = raw.get("expiration")
    ttl = raw.get("expiration_ttl")
    metadata = raw.get("metadata")
    return PutItem(
        key=key.encode(),
        value=data,
        expiration=None if expiration is None else validation.integer(expiration, "expiration"),
        expiration_ttl=None if ttl is None else validation.integer(ttl, "expiration_ttl"),
        metadata=None if metadata is None else validation.metadata_value(metadata),
    )


async def bulk_put(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    if not isinstance(body, list):
        raise InvalidRequest("The request body must be a list of key-value pairs.")
    items = [_bulk_item(index, raw) for index, raw in enumerate(body)]
    count = await _operations(request).bulk_put(_namespace_id(request), items)
    return envelope({"successful_key_count": count, "unsuccessful_keys": []})


async def bulk_delete(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    if not isinstance(body, list) or not all(isinstance(key, str) for key in body):
        raise InvalidRequest("The request body must be a list of key names.")
    count = await _operations(request).bulk_delete(
        _namespace_id(request), [key.encode() for key in body]
    )
    return envelope({"successful_key_count": count, "unsuccessful_keys": []})


async def bulk_get(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    keys = body.get("keys") if isinstance(body, dict) else None
    names = [k.encode() for k in keys if isinstance(k, str)] if isinstance(keys, list) else []
    operations = _operations(request)
    reservation = await request.app[_READS].reserve(
        operations.value_bytes(_namespace_id(request), names)
    )
    try:
        values = bulk_get_values(_operations(request), _namespace_id(request), body)
        encoded = _dumps(
            {"success": True, "errors": [], "messages": [], "result": {"values": values}}
        ).encode()
        del values
        reservation.settle(len(encoded))
        headers = {"Content-Type": "application/json; charset=utf-8"}
        return await send_value(request, encoded, headers)
    finally:
        reservation.release()


# ---- account (what wrangler asks without CLOUDFLARE_ACCOUNT_ID) ----------


async def list_memberships(request: web.Request) -> web.StreamResponse:
    """One local account, so wrangler picks it without asking."""
    membership = {
        "id": LOCAL_ACCOUNT_ID,
        "account": {"id": LOCAL_ACCOUNT_ID, "name": LOCAL_ACCOUNT_NAME},
        "roles": ["Administrator"],
        "status": "accepted",
    }
    return envelope(
        [membership], result_info={"page": 1, "per_page": 20, "count": 1, "total_count": 1}
    )


async def verify_token(request: web.Request) -> web.StreamResponse:
    """Reached only with a valid token (or none needed): the token is active."""
    return envelope({"id": LOCAL_ACCOUNT_ID, "status": "active"})


# ---- app ----------------------------------------------------------------


def _middleware(
    authorize: Authorize | None,
    observe: Observe | None,
    guard: HttpGuard,
    calls: CallBudget,
) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        binding = workers_binding.is_binding_request(request)
        if binding:
            route = workers_binding.route_name(request)
        else:
            route = request.match_info.route.name or "unmatched"
        status = 500
        try:
            response = await _admitted(request, handler, binding, authorize, guard, calls)
            status = response.status
            return response
        finally:
            if observe is not None:
                observe("http", route, status, time.perf_counter() - started)

    return middleware


async def _admitted(
    request: web.Request,
    handler: Handler,
    binding: bool,
    authorize: Authorize | None,
    guard: HttpGuard,
    calls: CallBudget,
) -> web.StreamResponse:
    """The answer, once the request passed the cross-site checks and the call budget."""
    refusal = guard.refusal(request, binding=binding)
    if refusal is not None:
        return _refused(binding, HTTP_FORBIDDEN, refusal)
    budgeted = binding or request.path not in PUBLIC_PATHS
    if budgeted:
        try:
            calls.enter()
        except RumorError as error:
            return _refused(binding, status_of(error).http_status, str(error))
    try:
        if binding:
            # Before any routing: a binding's keys may be named "metrics" or "client/v4/…".
            return await workers_binding.answer(
                request, request.app[_OPERATIONS], authorize, request.app[_READS]
            )
        return await _answer(request, handler, authorize)
    finally:
        if budgeted:
            calls.leave()


def close_if_body_unread(request: web.Request) -> None:
    """Refused before its body was read: close the connection after the answer.

    aiohttp would otherwise read and discard the rest for up to 10 s ("lingering
    close"), gigabytes on a fast link, for a request already refused.
    """
    if not request.content.is_eof() and request.protocol is not None:
        request.protocol.force_close()


def _refused(binding: bool, status: int, message: str) -> web.Response:
    if binding:
        return workers_binding.failure(status, message)
    return failure(status, CODE_AUTH if status == HTTP_FORBIDDEN else CODE_INTERNAL, message)


async def _answer(
    request: web.Request, handler: Handler, authorize: Authorize | None
) -> web.StreamResponse:
    public = request.path in PUBLIC_PATHS
    # The web console checks its own session cookie or token (console.py).
    console = request.path == CONSOLE_ROOT or request.path.startswith(CONSOLE_ROOT + "/")
    if authorize is not None and not public and not console:
        denied = authorize(request.headers.get("Authorization"))
        if denied is not None:
            return failure(denied, CODE_AUTH, "Authentication error")
    try:
        return await handler(request)
    except RumorError as error:
        status = status_of(error)
        close_if_body_unread(request)
        return failure(status.http_status, status.cloudflare_code, str(error))
    except web.HTTPException as error:
        if public:
            raise
        return failure(error.status, CODE_INTERNAL, error.reason)
    except Exception as error:
        _throttled.error(
            "http.internal_error", (request.path, type(error).__name__), exc_info=error
        )
        return failure(500, CODE_INTERNAL, "internal error")


def build_app(
    operations: Operations,
    *,
    authorize: Authorize | None = None,
    ready: Callable[[], bool] = lambda: True,
    metrics_text: MetricsText | None = None,
    observe: Observe | None = None,
    guard: HttpGuard | None = None,
    reads: ByteBudget | None = None,
    calls: CallBudget | None = None,
) -> web.Application:
    """The gateway; without ``guard`` it answers as a loopback listener would."""
    guard = guard or HttpGuard.for_listener("127.0.0.1:0")
    calls = calls or CallBudget(2**31)
    app = web.Application(
        client_max_size=MAX_BODY_BYTES, middlewares=[_middleware(authorize, observe, guard, calls)]
    )
    app[_OPERATIONS] = operations
    app[_READS] = reads or ByteBudget(2**62, 0)

    async def healthz(request: web.Request) -> web.StreamResponse:
        ok = ready()
        return web.json_response(
            {"status": "ok" if ok else "unavailable"}, status=200 if ok else 503
        )

    async def metrics(request: web.Request) -> web.StreamResponse:
        if metrics_text is None:
            raise web.HTTPNotFound()
        body, content_type = metrics_text()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    ns = PREFIX + "/{namespace_id}"
    routes: list[tuple[str, str, Handler, str]] = [
        ("GET", "/healthz", healthz, "healthz"),
        ("GET", "/metrics", metrics, "metrics"),
        ("POST", PREFIX, create_namespace, "namespaces.create"),
        ("GET", PREFIX, list_namespaces, "namespaces.list"),
        ("GET", ns, get_namespace, "namespaces.get"),
        ("PUT", ns, rename_namespace, "namespaces.update"),
        ("DELETE", ns, delete_namespace, "namespaces.delete"),
        ("GET", ns + "/keys", list_keys, "keys.list"),
        ("GET", ns + "/values/{key:.*}", get_value, "values.get"),
        ("PUT", ns + "/values/{key:.*}", put_value, "values.update"),
        ("DELETE", ns + "/values/{key:.*}", delete_value, "values.delete"),
        ("GET", ns + "/metadata/{key:.*}", get_metadata, "metadata.get"),
        ("PUT", ns + "/bulk", bulk_put, "bulk.update"),
        ("DELETE", ns + "/bulk", bulk_delete, "bulk.delete"),
        ("POST", ns + "/bulk/delete", bulk_delete, "bulk.delete_post"),
        ("POST", ns + "/bulk/get", bulk_get, "bulk.get"),
        ("GET", "/client/v4/memberships", list_memberships, "memberships.list"),
        ("GET", "/client/v4/user/tokens/verify", verify_token, "tokens.verify"),
    ]
    for method, path, handler, name in routes:
        app.router.add_route(method, path, handler, name=name)
    return app


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Serve ``app``; return the runner and the "host:port" bound (port 0 picks a free one)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in str(bound_host) else str(bound_host)
    return runner, f"{shown}:{bound_port}"
