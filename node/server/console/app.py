"""The web console at ``/ui/``: the cluster, the data and the experiments in a browser.

Its assets (``assets/``: plain HTML, CSS and JavaScript, no build step,
nothing fetched from outside the node) are served from the package; its JSON
API under ``/ui/api/`` calls the same in-process objects as the rest of the
node: ``Operations`` for data, the EngineDriver and the WatchHub for the live
view (``feed``, with ``peers`` for the other members), and
``experiments`` for experiment reports.

Who may use it. The gateway's middleware has already refused cross-site
requests (``http.guard``: Origin and Host) and skips its bearer check for
``/ui``; this module decides instead:

- Without an API token the console is open, like the rest of the HTTP API on
  a loopback listener (a non-loopback listener without a token is refused at
  start-up).
- With a token, the console asks for it once (``POST /ui/api/login``) and
  keeps a server-side session (holding the token's grant: its scopes and
  namespaces hold in the console as on every API) named by a random id in an HttpOnly,
  SameSite=Strict cookie (Secure over TLS), scoped to ``/ui`` and named after
  the listener's port, since browsers share cookies between ports of one host.
  Each session has its own CSRF token, which every change (any method but
  GET/HEAD) must echo in ``X-CSRF-Token``. A request with a valid
  ``Authorization: Bearer`` token is served as well, without CSRF: a header
  is never sent by a browser on its own.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiohttp import web

from rumor.node.core import paging, validation
from rumor.node.core.errors import InvalidRequest, PermissionDenied
from rumor.node.server import auth
from rumor.node.server.access import HttpAccess, require_title, visible
from rumor.node.server.console import experiments as console_experiments
from rumor.node.server.console.feed import ClusterView, stream
from rumor.node.server.http.body import json_body
from rumor.node.server.http.entry import (
    AUDIT_NAMESPACE,
    AUDIT_TITLE,
    CONSOLE_ROOT,
    audited_namespace,
)
from rumor.node.server.http.request import CODE_AUTH, envelope, failure
from rumor.node.server.http.values import read_value
from rumor.node.server.operations import Operations, PutItem

SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 256  # the oldest session is forgotten beyond
MAX_VIEW_BYTES = 1024 * 1024  # a value larger than this is shown truncated
CSRF_HEADER = "X-CSRF-Token"
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "spread.js": "text/javascript; charset=utf-8",
}
_SAFE_METHODS = ("GET", "HEAD")


@dataclass(slots=True)
class _Session:
    csrf: str
    expires: float
    grant: auth.Grant | None


class Console:
    def __init__(
        self,
        operations: Operations,
        view: ClusterView,
        *,
        access: HttpAccess | None = None,
        experiments_dir: str = "",
    ) -> None:
        self.operations = operations
        self.view = view
        self.access = access  # None, or without tokens: the console is open
        self.experiments_dir = experiments_dir
        self.sessions: OrderedDict[str, _Session] = OrderedDict()
        self.closing = asyncio.Event()

    # ---- sessions -------------------------------------------------------

    @staticmethod
    def cookie_name(request: web.Request) -> str:
        port = request.host.rpartition(":")[2]
        return f"rumor_console_{port}" if port.isdigit() else "rumor_console"

    def _session(self, request: web.Request) -> _Session | None:
        session_id = request.cookies.get(self.cookie_name(request))
        session = self.sessions.get(session_id) if session_id else None
        if session is None or session.expires < time.monotonic():
            return None
        return session

    def denial(self, request: web.Request) -> web.Response | None:
        """Why ``request`` may not use the console API (401/403), or None; sets the caller."""
        auth.set_caller(None)
        if not self.auth_required:
            return None
        assert self.access is not None
        if request.headers.get("Authorization") is not None:
            status = self.access.authenticate(request.headers.get("Authorization"))
            return None if status is None else failure(status, CODE_AUTH, auth.DENIED_MESSAGE)
        session = self._session(request)
        if session is None:
            return failure(401, CODE_AUTH, "Sign in to the console with an API token.")
        auth.set_caller(session.grant)
        if request.method not in _SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                return failure(403, CODE_AUTH, "The CSRF token is missing or wrong.")
        return None

    @property
    def auth_required(self) -> bool:
        return self.access is not None and self.access.enabled

    def signed_in(self, request: web.Request, grant: auth.Grant | None) -> web.Response:
        """A new session: its CSRF token in the answer, its id in the cookie."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.sessions[session_id] = _Session(csrf, time.monotonic() + SESSION_SECONDS, grant)
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.popitem(last=False)
        response = envelope({"csrf": csrf})
        response.set_cookie(
            self.cookie_name(request),
            session_id,
            max_age=SESSION_SECONDS,
            path=CONSOLE_ROOT,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
        )
        return response


_CONSOLE = web.AppKey("console", Console)


def _console(request: web.Request) -> Console:
    return request.app[_CONSOLE]


def _guarded(handler: Any) -> Any:
    async def checked(request: web.Request) -> web.StreamResponse:
        console = _console(request)
        denied = console.denial(request)
        if denied is not None:
            return denied
        route = request.match_info.route.name or ""
        checker = console.access
        if checker is not None:
            try:
                await checker.permit(route, request.match_info, api="console")
            except PermissionDenied as error:
                return failure(403, CODE_AUTH, str(error))
        response: web.StreamResponse = await handler(request)
        if checker is not None:
            checker.ended(
                route,
                audited_namespace(request, request.match_info),
                request.get(AUDIT_TITLE),
                response.status,
            )
        return response

    return checked


# ---- assets and sessions ------------------------------------------------


async def _redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(CONSOLE_ROOT + "/")


async def _asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info.get("name") or "index.html"
    if name not in ASSETS:
        raise web.HTTPNotFound()
    body = resources.files("rumor.node.server.console").joinpath("assets", name).read_bytes()
    return web.Response(
        body=body,
        headers={
            "Content-Type": ASSETS[name],
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": (
                "default-src 'self'; img-src 'self' data:; style-src 'self';"
                " script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
            ),
        },
    )


async def _session_info(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    session = console._session(request)
    return envelope(
        {
            "auth_required": console.auth_required,
            "signed_in": not console.auth_required or session is not None,
            "csrf": None if session is None else session.csrf,
        }
    )


async def _login(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    body = await json_body(request)
    token = body.get("token") if isinstance(body, dict) else None
    if not console.auth_required or console.access is None:
        return envelope({"csrf": None})
    if not isinstance(token, str) or not token or any(ch.isspace() for ch in token):
        return failure(401, CODE_AUTH, "Give the API token.")
    grant = console.access.tokens.grant_of(f"Bearer {token}")
    if grant is None:
        return failure(403, CODE_AUTH, "That is not one of this node's API tokens.")
    return console.signed_in(request, grant)


async def _logout(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    session_id = request.cookies.get(console.cookie_name(request))
    if session_id:
        console.sessions.pop(session_id, None)
    response = envelope({})
    response.del_cookie(console.cookie_name(request), path=CONSOLE_ROOT)
    return response


# ---- cluster ------------------------------------------------------------


async def _status(request: web.Request) -> web.StreamResponse:
    return envelope(_console(request).view.snapshot())


async def _events(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    peer = request.transport.get_extra_info("peername") if request.transport else None
    connection = f"console:{peer[0] if peer else ''}"
    return await stream(request, console.view, console.closing, connection)


# ---- data ---------------------------------------------------------------


def _title(body: Any) -> str:
    title = body.get("title") if isinstance(body, dict) else None
    if not isinstance(title, str):
        raise InvalidRequest('The request body must be {"title": "..."}.')
    return title


async def _list_namespaces(request: web.Request) -> web.StreamResponse:
    reachable = visible(auth.caller(), _console(request).operations.list_namespaces())
    infos = sorted(reachable, key=lambda i: (i.title, i.id))
    return envelope([{"id": info.id, "title": info.title} for info in infos])


async def _create_namespace(request: web.Request) -> web.StreamResponse:
    title = _title(await json_body(request))
    require_title(title)
    request[AUDIT_TITLE] = title
    info = await _console(request).operations.create_namespace(title)
    request[AUDIT_NAMESPACE] = info.id
    return envelope({"id": info.id, "title": info.title})


async def _rename_namespace(request: web.Request) -> web.StreamResponse:
    title = _title(await json_body(request))
    require_title(title)
    request[AUDIT_TITLE] = title
    ops = _console(request).operations
    info = await ops.rename_namespace(request.match_info["namespace_id"], title)
    return envelope({"id": info.id, "title": info.title})


async def _delete_namespace(request: web.Request) -> web.StreamResponse:
    await _console(request).operations.delete_namespace(request.match_info["namespace_id"])
    return envelope({})


async def _list_keys(request: web.Request) -> web.StreamResponse:
    raw_limit = request.query.get("limit")
    limit = paging.http_list_limit(
        None if not raw_limit else validation.integer(raw_limit, "limit")
    )
    listing = await _console(request).operations.list_keys(
        request.match_info["namespace_id"],
        request.query.get("prefix", "").encode(),
        limit,
        request.query.get("cursor", "").encode(),
    )
    keys = [
        {
            "name": name.decode("utf-8", "replace"),
            "expiration": header.expiration or None,
            "has_metadata": header.metadata is not None,
        }
        for name, header in listing.keys
    ]
    return envelope(keys, result_info={"count": len(keys), "cursor": listing.cursor.decode()})


def _key_param(request: web.Request) -> bytes:
    key = request.query.get("key", "")
    if not key:
        raise InvalidRequest("Give the key as ?key=...")
    return key.encode()


async def _get_value(request: web.Request) -> web.StreamResponse:
    ops = _console(request).operations
    found, reservation = await read_value(
        request, ops, request.match_info["namespace_id"], _key_param(request)
    )
    try:
        if found is None:
            return failure(404, 10009, "key not found")
        shown = found.value[:MAX_VIEW_BYTES]
        try:
            text: str | None = shown.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        header = found.header
        return envelope(
            {
                "key": request.query["key"],
                "length": len(found.value),
                "truncated": len(shown) < len(found.value),
                "base64": base64.b64encode(shown).decode(),
                "text": text,
                "expiration": header.expiration or None,
                "metadata": None if header.metadata is None else header.metadata.decode(),
            }
        )
    finally:
        reservation.release()


def _optional_int(body: dict[str, Any], name: str) -> int | None:
    raw = body.get(name)
    return None if raw is None or raw == "" else validation.integer(raw, name)


async def _put_value(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("key"), str):
        raise InvalidRequest('The request body must be {"key": "...", "value": "..."}.')
    value = body.get("value", "")
    if not isinstance(value, str):
        raise InvalidRequest("The value must be a string (text, or base64 with base64: true).")
    try:
        data = base64.b64decode(value, validate=True) if body.get("base64") else value.encode()
    except ValueError as exc:
        raise InvalidRequest("The value is not base64.") from exc
    validation.value_length(len(data))
    metadata = body.get("metadata")
    item = PutItem(
        key=body["key"].encode(),
        value=data,
        expiration=_optional_int(body, "expiration"),
        expiration_ttl=_optional_int(body, "expiration_ttl"),
        metadata=None if metadata is None else validation.metadata_value(metadata),
    )
    await _console(request).operations.put(request.match_info["namespace_id"], item)
    return envelope({})


async def _delete_value(request: web.Request) -> web.StreamResponse:
    ops = _console(request).operations
    await ops.delete(request.match_info["namespace_id"], _key_param(request))
    return envelope({})


# ---- experiments --------------------------------------------------------


def _in_experiments_dir(handler: console_experiments.Handler) -> Any:
    async def call(request: web.Request) -> web.StreamResponse:
        return await handler(request, _console(request).experiments_dir)

    return call


# ---- routes -------------------------------------------------------------


def add_routes(app: web.Application, console: Console) -> None:
    """Serve ``console`` under /ui/ on the gateway ``app``."""
    app[_CONSOLE] = console

    async def closing(_: web.Application) -> None:
        console.closing.set()  # open event streams end: shutdown never waits for them

    app.on_shutdown.append(closing)
    api = CONSOLE_ROOT + "/api"
    ns = api + "/namespaces/{namespace_id}"
    routes: list[tuple[str, str, Any, str]] = [
        ("GET", CONSOLE_ROOT, _redirect, "console.root"),
        ("GET", CONSOLE_ROOT + "/", _asset, "console.index"),
        ("GET", CONSOLE_ROOT + "/{name:[a-z]+\\.[a-z]+}", _asset, "console.asset"),
        ("GET", api + "/session", _session_info, "console.session"),
        ("POST", api + "/login", _login, "console.login"),
        ("POST", api + "/logout", _logout, "console.logout"),
        ("GET", api + "/status", _guarded(_status), "console.status"),
        ("GET", api + "/events", _guarded(_events), "console.events"),
        ("GET", api + "/namespaces", _guarded(_list_namespaces), "console.namespaces.list"),
        ("POST", api + "/namespaces", _guarded(_create_namespace), "console.namespaces.create"),
        ("PUT", ns, _guarded(_rename_namespace), "console.namespaces.update"),
        ("DELETE", ns, _guarded(_delete_namespace), "console.namespaces.delete"),
        ("GET", ns + "/keys", _guarded(_list_keys), "console.keys.list"),
        ("GET", ns + "/value", _guarded(_get_value), "console.values.get"),
        ("PUT", ns + "/value", _guarded(_put_value), "console.values.update"),
        ("DELETE", ns + "/value", _guarded(_delete_value), "console.values.delete"),
    ]
    for path, handler in console_experiments.HANDLERS.items():
        name = "console.experiments." + (path.strip("/") or "list")
        guarded = _guarded(_in_experiments_dir(handler))
        routes.append(("GET", api + "/experiments" + path, guarded, name))
    for method, path, handler, name in routes:
        app.router.add_route(method, path, handler, name=name)
