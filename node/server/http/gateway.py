"""The Cloudflare-compatible HTTP gateway: the Workers KV part of Cloudflare's REST API v4.

Every route calls the same ``Operations`` as the gRPC service; errors of
``core.errors`` are mapped by ``errors.status_of`` (the one error map) onto the
HTTP status and Cloudflare's error code, inside Cloudflare's envelope
``{success, errors: [{code, message}], messages, result, result_info}``.
Keys are taken from the raw path and percent-decoded to bytes, so ``a%2Fb`` is
the key ``a/b``.

Before any route runs, the middleware refuses cross-site use (``guard``:
Origin and Host, 403) and requests beyond the client-call budget (503).

This module holds the app (middleware, the route table, the listener), the
namespace and account routes; ``values`` the keys, values and bulk
routes; ``request`` what they all share (the envelope, reading a
request).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from rumor.node.core import validation
from rumor.node.core.errors import (
    InvalidRequest,
    RumorError,
)
from rumor.node.server.admission import ByteBudget, CallBudget
from rumor.node.server.errors import status_of
from rumor.node.server.http import workers_binding
from rumor.node.server.http.guard import HTTP_FORBIDDEN, HttpGuard
from rumor.node.server.http.request import (
    CODE_AUTH,
    CODE_INTERNAL,
    MAX_BODY_BYTES,
    OPERATIONS,
    READS,
    envelope,
    failure,
    int_param,
    json_body,
    namespace_id_of,
    operations_of,
)
from rumor.node.server.http.values import (
    bulk_delete,
    bulk_get,
    bulk_put,
    delete_value,
    get_metadata,
    get_value,
    list_keys,
    put_value,
)
from rumor.node.server.log_throttle import LogThrottle
from rumor.node.server.operations import NamespaceInfo, Operations

PREFIX = "/client/v4/accounts/{account_id}/storage/kv/namespaces"
PUBLIC_PATHS = ("/healthz", "/metrics")
CONSOLE_ROOT = "/ui"
# Rumor has no accounts: any account id in a path is accepted; this one is offered.
LOCAL_ACCOUNT_ID = "0" * 32
LOCAL_ACCOUNT_NAME = "Rumor"

Authorize = Callable[[str | None], int | None]
Observe = Callable[[str, str, int, float], None]
MetricsText = Callable[[], tuple[bytes, str]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_log = structlog.get_logger(__name__)
_throttled = LogThrottle(_log)


# ---- namespaces ---------------------------------------------------------


def _namespace_json(info: NamespaceInfo) -> dict[str, Any]:
    return {"id": info.id, "title": info.title, "supports_url_encoding": True}


# ---- namespaces ---------------------------------------------------------


async def create_namespace(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    title = body.get("title") if isinstance(body, dict) else None
    if not isinstance(title, str):
        raise InvalidRequest('The request body must be {"title": "..."}.')
    return envelope(_namespace_json(await operations_of(request).create_namespace(title)))


async def list_namespaces(request: web.Request) -> web.StreamResponse:
    page = validation.page(int_param(request, "page"))
    per_page = validation.per_page(int_param(request, "per_page"))
    order = request.query.get("order", "id")
    direction = request.query.get("direction", "asc")
    if order not in ("id", "title"):
        raise InvalidRequest(f'Invalid order "{order}". Order by "id" or "title".')
    if direction not in ("asc", "desc"):
        raise InvalidRequest(f'Invalid direction "{direction}". Use "asc" or "desc".')
    infos = sorted(
        operations_of(request).list_namespaces(),
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
    return envelope(_namespace_json(operations_of(request).get_namespace(namespace_id_of(request))))


async def rename_namespace(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    title = body.get("title") if isinstance(body, dict) else None
    if not isinstance(title, str):
        raise InvalidRequest('The request body must be {"title": "..."}.')
    info = await operations_of(request).rename_namespace(namespace_id_of(request), title)
    return envelope(_namespace_json(info))


async def delete_namespace(request: web.Request) -> web.StreamResponse:
    await operations_of(request).delete_namespace(namespace_id_of(request))
    return envelope({})


# ---- keys ---------------------------------------------------------------


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
                request, request.app[OPERATIONS], authorize, request.app[READS]
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
        refused = failure(status.http_status, status.cloudflare_code, str(error))
        if status.http_status == 503:
            refused.headers["Retry-After"] = "1"  # a lagging or busy node: soon
        return refused
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
    app[OPERATIONS] = operations
    app[READS] = reads or ByteBudget(2**62, 0)

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


async def serve_unix(app: web.Application, path: str) -> web.AppRunner:
    """Serve ``app`` on the Unix socket ``path`` (an owner's, for its workers)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.UnixSite(runner, path).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
