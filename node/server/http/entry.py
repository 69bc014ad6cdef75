"""What every HTTP request goes through, and the routes answered before aiohttp's router.

Each request, whatever its route: the cross-site checks (``guard``: Origin and
Host, 403), the client-call budget (503, outside ``/healthz`` and ``/metrics``),
the API token and the route against its scopes and namespaces
(``access.HttpAccess``: 401/403, outside ``/healthz``, ``/metrics`` and the
console, which checks its own session; a refused scope is 403 with code 10000
"Authentication error"), then its handler, whose ``core.errors`` are mapped by
``errors.status_of`` onto Cloudflare's envelope (a 503 with Retry-After). A
body the handler reads takes room in the listener's upload budget, under its
idle and total deadlines (``body``).
Namespace changes go to the audit trail (``HttpAccess.ended``). ``observe`` is
told the route, the status and the time taken.

A client that goes away before its answer is written (the connection reset
while its body is read or its answer written) is no error: nothing is logged,
no status is observed, and ``client_disconnected`` counts it.

Rules for the hot path (these run per request, thousands a second per core):

- The Authorization header is checked once, and the answer shared by the
  guard (a valid token exempts from the Host allowlist) and the authorization;
  the route's scope is checked against the grant that check found.
- ``Entry.before_routing`` answers the values routes (GET/PUT/DELETE of
  ``.../namespaces/{ns}/values/{key}``) and every Workers binding request
  without aiohttp's router and middleware chain, when the raw path says
  plainly what the router would decide: no percent-escapes, dot segments or
  braces (anything else goes through the router, exactly as before). The
  checks, error mapping and observation are the same code either way.
"""

from __future__ import annotations

import asyncio
import enum
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from rumor.node.core.errors import PermissionDenied, RumorError
from rumor.node.server import access
from rumor.node.server.admission import ByteBudget, CallBudget
from rumor.node.server.auth import DENIED_MESSAGE
from rumor.node.server.errors import status_of
from rumor.node.server.http import workers_binding
from rumor.node.server.http.body import UPLOADS
from rumor.node.server.http.guard import HTTP_FORBIDDEN, HttpGuard
from rumor.node.server.http.request import (
    CODE_AUTH,
    CODE_INTERNAL,
    client_gone,
    connection_closed,
    drain_or_close,
    failure,
    refuse,
)
from rumor.node.server.http.values import answer_delete, answer_get, answer_put
from rumor.node.server.log_throttle import LogThrottle
from rumor.node.server.operations import Operations
from rumor.node.server.upload_budget import UploadBudget

PUBLIC_PATHS = ("/healthz", "/metrics")
CONSOLE_ROOT = "/ui"
# A values route's raw path says what the router would decide when it is ASCII and
# has no percent-escapes (%0A is a newline, which the route's ".*" does not match),
# dot segments or fragment, nor braces in the account or namespace.
_PLAIN_VALUES_PATH = re.compile(
    r"/client/v4/accounts/[^/{}%#]+/storage/kv/namespaces/([^/{}%#]+)/values/([^%#]*)"
)
Authorize = access.HttpAccess
# What a namespace route leaves for the audit trail: the namespace's id and title.
AUDIT_NAMESPACE = web.RequestKey("audit_namespace", str)
AUDIT_TITLE = web.RequestKey("audit_title", str)
# What a route's rule reads to find its namespace (a routed request's match info).
Match = Mapping[str, str]
Observe = Callable[[str, str, int, float], None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

_log = structlog.get_logger(__name__)
_throttled = LogThrottle(_log)


def audited_namespace(request: web.Request, match: Match) -> str | None:
    """The namespace a request changed, for the audit trail."""
    named: str | None = request.get(AUDIT_NAMESPACE) or match.get("namespace_id")
    return named


def values_target(raw_path: str) -> tuple[str, bytes] | None:
    """(namespace id, key) of a values route whose raw path the router would read the same."""
    path = raw_path.partition("?")[0]
    match = _PLAIN_VALUES_PATH.fullmatch(path)
    if match is None or not path.isascii() or "/." in path:
        return None
    return match.group(1), match.group(2).encode()


class Door(enum.Enum):
    """What a request is, for the checks it passes."""

    API = "api"  # the REST API: its API token is checked
    PUBLIC = "public"  # /healthz, /metrics: no token, outside the call budget
    CONSOLE = "console"  # the web console checks its own session cookie or token
    BINDING = "binding"  # the Workers binding: answered in its own protocol


ValueAnswer = Callable[
    [Operations, ByteBudget, str, bytes, web.Request], Awaitable[web.StreamResponse]
]
# The values routes answered before routing: method -> (route name, answer).
VALUE_ROUTES: dict[str, tuple[str, ValueAnswer]] = {
    "GET": ("values.get", answer_get),
    "PUT": ("values.update", answer_put),
    "DELETE": ("values.delete", answer_delete),
}


def door_of(path: str) -> Door:
    if path in PUBLIC_PATHS:
        return Door.PUBLIC
    if path == CONSOLE_ROOT or path.startswith(CONSOLE_ROOT + "/"):
        return Door.CONSOLE
    return Door.API


class Entry:
    """The checks, answer and observation of every request, routed or not."""

    def __init__(
        self,
        operations: Operations,
        reads: ByteBudget,
        *,
        authorize: Authorize | None,
        observe: Observe | None,
        guard: HttpGuard,
        calls: CallBudget,
        uploads: UploadBudget | None = None,
        client_disconnected: Callable[[], object] | None = None,
    ) -> None:
        self.operations = operations
        self.reads = reads
        self.authorize = authorize
        self.observe = observe
        self.guard = guard
        self.calls = calls
        self.uploads = uploads or UploadBudget.unbounded()
        self.client_disconnected = client_disconnected
        # The guard asks the same checker as the authorization (one call answers both).
        self._one_check = guard.token_status is None or (
            authorize is not None and guard.token_status == authorize.tokens.http_status
        )

    # ---- the two ways in ------------------------------------------------

    def middleware(self) -> Middleware:
        """For requests aiohttp routed: everything ``before_routing`` left to the router."""

        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            if workers_binding.is_binding_request(request):
                route = workers_binding.route_name(request)
                return await self.through(
                    request, route, Door.BINDING, None, _binding_match(request)
                )
            route = request.match_info.route.name or "unmatched"
            door = door_of(request.path)
            return await self.through(request, route, door, handler, request.match_info)

        return middleware

    def before_routing(self, routed: RequestHandler) -> RequestHandler:
        """A server's request handler: the hot routes here, the rest to ``routed``."""
        operations, reads = self.operations, self.reads

        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            # aiohttp answers "Expect: 100-continue" in its routing step.
            if not isinstance(request, web.Request) or "Expect" in request.headers:
                return await routed(request)
            if workers_binding.is_binding_request(request):
                route = workers_binding.route_name(request)
                return await self.through(
                    request, route, Door.BINDING, None, _binding_match(request)
                )
            value_route = VALUE_ROUTES.get(request.method)
            target = None if value_route is None else values_target(request.raw_path)
            if value_route is None or target is None:
                return await routed(request)
            route, answer = value_route
            handler = partial(answer, operations, reads, *target)
            match = {"namespace_id": target[0]}
            return await self.through(request, route, Door.API, handler, match)

        return handle

    # ---- every request --------------------------------------------------

    async def through(
        self,
        request: web.Request,
        route: str,
        door: Door,
        handler: Handler | None,
        match: Match,
    ) -> web.StreamResponse:
        """``request`` checked, answered by ``handler`` and observed as ``route``.

        ``handler`` is None for the Workers binding (``workers_binding.answer``);
        ``match``: what the route's rule reads (its ``namespace_id``).
        """
        started = time.perf_counter()
        status = 500
        request[UPLOADS] = self.uploads  # whatever reads its body (``body``) takes room here
        try:
            response = await self._checked(request, route, door, handler, match)
            status = response.status
            return response
        except web.HTTPException as error:
            status = error.status
            raise
        except ConnectionError:
            status = 0
            self._disconnected()
            return web.Response(status=499)  # never reaches the client: it has gone
        except asyncio.CancelledError:
            if connection_closed(request):
                status = 0
                self._disconnected()
            raise
        finally:
            if status and self.observe is not None:
                self.observe("http", route, status, time.perf_counter() - started)

    def _disconnected(self) -> None:
        if self.client_disconnected is not None:
            self.client_disconnected()

    async def _checked(
        self, request: web.Request, route: str, door: Door, handler: Handler | None, match: Match
    ) -> web.StreamResponse:
        """The answer, once the request passed the cross-site checks, the budget and the token."""
        binding = door is Door.BINDING
        authorization = request.headers.get("Authorization")
        checker = self.authorize
        denied = None if checker is None else checker.authenticate(authorization)
        if self._one_check:
            token_valid = denied is None and self.guard.token_status is not None
        else:
            token_valid = self.guard.token_valid(authorization)
        refusal = self.guard.refusal(request, binding=binding, token_valid=token_valid)
        if refusal is not None:
            return _refused(binding, HTTP_FORBIDDEN, refusal)
        budgeted = door is not Door.PUBLIC
        if budgeted:
            try:
                self.calls.enter()
            except RumorError as error:
                return _refused(binding, status_of(error).http_status, str(error))
        # The console checks its own session; /healthz and /metrics need no token.
        audited = checker is not None and door is Door.API
        try:
            if handler is None:
                # Before any routing: a binding's keys may be named "metrics" or "client/v4/…".
                if checker is not None and denied is None:
                    await checker.permit(route, match, api="binding")
                return await workers_binding.answer(request, self.operations, denied, self.reads)
            if checker is not None and door is Door.API:
                if denied is not None:
                    return failure(denied, CODE_AUTH, DENIED_MESSAGE)
                await checker.permit(route, match)
            response = await handler(request)
            if audited:
                self._ended(request, route, match, response.status)
            return response
        except PermissionDenied as error:
            await drain_or_close(request)
            if binding:
                return await refuse(request, workers_binding.failure(HTTP_FORBIDDEN, str(error)))
            # Cloudflare's words for a token without the permission (wrangler shows them as is).
            return await refuse(request, failure(HTTP_FORBIDDEN, CODE_AUTH, DENIED_MESSAGE))
        except RumorError as error:
            status = status_of(error)
            if audited:
                self._ended(request, route, match, status.http_status)
            await drain_or_close(request)
            refused = failure(status.http_status, status.cloudflare_code, str(error))
            if status.http_status == 503:
                refused.headers["Retry-After"] = "1"  # a lagging or busy node: soon
            return await refuse(request, refused)
        except web.HTTPException as error:
            if door is Door.PUBLIC:
                raise
            return failure(error.status, CODE_INTERNAL, error.reason)
        except Exception as error:
            if client_gone(request, error):
                raise  # not an error: ``through`` counts it
            _throttled.error(
                "http.internal_error", (request.path, type(error).__name__), exc_info=error
            )
            return failure(500, CODE_INTERNAL, "internal error")
        finally:
            if budgeted:
                self.calls.leave()

    def _ended(self, request: web.Request, route: str, match: Match, status: int) -> None:
        if self.authorize is not None:
            namespace_id = audited_namespace(request, match)
            self.authorize.ended(route, namespace_id, request.get(AUDIT_TITLE), status)


def _binding_match(request: web.Request) -> Match:
    """What a binding route's rule reads: the namespace its header names."""
    return {"namespace_id": request.headers[workers_binding.NAMESPACE_HEADER]}


def _refused(binding: bool, status: int, message: str) -> web.Response:
    if binding:
        return workers_binding.failure(status, message)
    return failure(status, CODE_AUTH if status == HTTP_FORBIDDEN else CODE_INTERNAL, message)
