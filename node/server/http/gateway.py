"""The Cloudflare-compatible HTTP gateway: the Workers KV part of Cloudflare's REST API v4.

Every route calls the same ``Operations`` as the gRPC service; errors of
``core.errors`` are mapped by ``errors.status_of`` (the one error map) onto the
HTTP status and Cloudflare's error code, inside Cloudflare's envelope
``{success, errors: [{code, message}], messages, result, result_info}``.
Keys are taken from the raw path and percent-decoded to bytes, so ``a%2Fb`` is
the key ``a/b``.

Before any route runs, ``entry`` refuses cross-site use (``guard``: Origin
and Host, 403), requests beyond the client-call budget (503), requests without
a valid API token (401/403) and routes the token's scopes and namespaces do not
reach (``access.HttpAccess``: 403, code 10000 "Authentication error", as
Cloudflare answers a token without the permission); it answers the values
routes and the Workers binding before aiohttp's router.

This module holds the app (the route table, the listener), the namespace and
account routes; ``entry`` what every request goes through; ``values`` the
keys, values and bulk routes; ``request`` what they all share (the envelope,
reading a request).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web

from rumor.node.core import paging
from rumor.node.core.errors import InvalidRequest
from rumor.node.server import access, auth
from rumor.node.server.admission import ByteBudget, CallBudget
from rumor.node.server.health import Health
from rumor.node.server.http.body import json_body
from rumor.node.server.http.entry import (
    AUDIT_NAMESPACE,
    AUDIT_TITLE,
    CONSOLE_ROOT,
    PUBLIC_PATHS,
    Authorize,
    Entry,
    Handler,
    Observe,
)
from rumor.node.server.http.guard import HttpGuard
from rumor.node.server.http.request import (
    MAX_BODY_BYTES,
    OPERATIONS,
    READS,
    envelope,
    int_param,
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
from rumor.node.server.operations import NamespaceInfo, Operations
from rumor.node.server.release import healthz_fields
from rumor.node.server.upload_budget import UploadBudget

__all__ = ["CONSOLE_ROOT", "PUBLIC_PATHS", "Authorize", "Observe", "build_app", "serve"]

PREFIX = "/client/v4/accounts/{account_id}/storage/kv/namespaces"
ENTRY = web.AppKey("entry", Entry)
# Rumor has no accounts: any account id in a path is accepted; this one is offered.
LOCAL_ACCOUNT_ID = "0" * 32
LOCAL_ACCOUNT_NAME = "Rumor"

MetricsText = Callable[[], tuple[bytes, str]]


# ---- namespaces ---------------------------------------------------------


def _namespace_json(info: NamespaceInfo) -> dict[str, Any]:
    return {"id": info.id, "title": info.title, "supports_url_encoding": True}


# ---- namespaces ---------------------------------------------------------


async def create_namespace(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    title = body.get("title") if isinstance(body, dict) else None
    if not isinstance(title, str):
        raise InvalidRequest('The request body must be {"title": "..."}.')
    access.require_title(title)
    request[AUDIT_TITLE] = title
    info = await operations_of(request).create_namespace(title)
    request[AUDIT_NAMESPACE] = info.id
    return envelope(_namespace_json(info))


async def list_namespaces(request: web.Request) -> web.StreamResponse:
    page = paging.page(int_param(request, "page"))
    per_page = paging.per_page(int_param(request, "per_page"))
    order = request.query.get("order", "id")
    direction = request.query.get("direction", "asc")
    if order not in ("id", "title"):
        raise InvalidRequest(f'Invalid order "{order}". Order by "id" or "title".')
    if direction not in ("asc", "desc"):
        raise InvalidRequest(f'Invalid direction "{direction}". Use "asc" or "desc".')
    infos = sorted(
        access.visible(auth.caller(), operations_of(request).list_namespaces()),
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
    access.require_title(title)
    request[AUDIT_TITLE] = title
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


def build_app(
    operations: Operations,
    *,
    authorize: Authorize | None = None,
    health: Callable[[], Health] = lambda: Health(ready=True),
    metrics_text: MetricsText | None = None,
    observe: Observe | None = None,
    guard: HttpGuard | None = None,
    reads: ByteBudget | None = None,
    calls: CallBudget | None = None,
    uploads: UploadBudget | None = None,
    client_disconnected: Callable[[], object] | None = None,
) -> web.Application:
    """The gateway; without ``guard`` it answers as a loopback listener would. Every
    body it reads is received under ``uploads`` (``body``).

    ``client_disconnected()`` is called for each request whose client went
    away before its answer was written.
    """
    reads = reads or ByteBudget(2**62, 0)
    entry = Entry(
        operations,
        reads,
        authorize=authorize,
        observe=observe,
        guard=guard or HttpGuard.for_listener("127.0.0.1:0"),
        calls=calls or CallBudget(2**31),
        uploads=uploads,
        client_disconnected=client_disconnected,
    )
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[entry.middleware()])
    app[OPERATIONS] = operations
    app[READS] = reads
    app[ENTRY] = entry

    async def healthz(request: web.Request) -> web.StreamResponse:
        status, body = health().http()
        return web.json_response({**body, **healthz_fields()}, status=status)

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


async def serve(
    app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` (HTTPS with ``ssl_context``); return the runner and the "host:port"
    bound (port 0 picks a free one).

    The gateway's hot routes are answered before aiohttp's router (``entry``).
    """
    runner = await _runner(app)
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
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
    runner = await _runner(app)
    try:
        await web.UnixSite(runner, path).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def _runner(app: web.Application) -> web.AppRunner:
    """A set-up runner whose hot routes are answered before aiohttp's router (``entry``)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    entry = app.get(ENTRY)
    if entry is not None and runner.server is not None:
        runner.server.request_handler = entry.before_routing(runner.server.request_handler)
    return runner
