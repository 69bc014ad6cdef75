"""What every HTTP request goes through, and the routes answered before aiohttp's router.

Each request, whatever its route: the cross-site checks (``guard``: Origin and
Host, 403), the client-call budget (503, outside ``/healthz`` and ``/metrics``),
the API token (401/403, outside ``/healthz``, ``/metrics`` and the console,
which checks its own session), then its handler, whose ``core.errors`` are
mapped by ``errors.status_of`` onto Cloudflare's envelope. ``observe`` is told
the route, the status and the time taken.

A client that goes away before its answer is written (the connection reset
while its body is read or its answer written) is no error: nothing is logged,
no status is observed, and ``client_disconnected`` counts it.

Rules for the hot path (these run per request, thousands a second per core):

- The Authorization header is checked once, and the answer shared by the
  guard (a valid token exempts from the Host allowlist) and the authorization.
- ``Entry.before_routing`` answers the values routes (GET/PUT/DELETE of
  ``.../namespaces/{ns}/values/{key}``) and every Workers binding request
  without aiohttp's router and middleware chain, when the raw path says
  plainly what the router would decide: no percent-escapes, dot segments or
  braces (anything else goes through the router, exactly as before). The
  checks, error mapping and observation are the same code either way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from urllib.parse import unquote_to_bytes

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from rumor.node.core.errors import RumorError
from rumor.node.server.admission import ByteBudget, CallBudget
from rumor.node.server.errors import status_of
from rumor.node.server.http import workers_binding
from rumor.node.server.http.guard import HTTP_FORBIDDEN, HttpGuard
from rumor.node.server.http.request import CODE_AUTH, CODE_INTERNAL, KEY_SEGMENT, failure
from rumor.node.server.http.values import answer_delete, answer_get, answer_put
from rumor.node.server.log_throttle import LogThrottle
from rumor.node.server.operations import Operations

PUBLIC_PATHS = ("/healthz", "/metrics")
CONSOLE_ROOT = "/ui"
# The raw path of a values route split on "/":
# ["", "client", "v4", "accounts", account, "storage", "kv", "namespaces", ns, "values", key]
_VALUES_SHAPE = (
    (9, "values"),
    (1, "client"),
    (2, "v4"),
    (3, "accounts"),
    (5, "storage"),
    (6, "kv"),
    (7, "namespaces"),
)
_ACCOUNT, _NAMESPACE = 4, 8
# Characters in a raw path that make the router's decision differ from a plain split.
_ROUTER_DECIDES = ("%", "/.", "{", "}", "#")
_VALUE_ROUTES = {"GET": "values.get", "PUT": "values.update", "DELETE": "values.delete"}

Authorize = Callable[[str | None], int | None]
Observe = Callable[[str, str, int, float], None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

_log = structlog.get_logger(__name__)
_throttled = LogThrottle(_log)


def close_if_body_unread(request: web.BaseRequest) -> None:
    """Refused before its body was read: close the connection after the answer.

    aiohttp would otherwise read and discard the rest for up to 10 s ("lingering
    close"), gigabytes on a fast link, for a request already refused.
    """
    if not request.content.is_eof() and request.protocol is not None:
        request.protocol.force_close()


def _peer_gone(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def values_target(raw_path: str) -> tuple[str, bytes] | None:
    """(namespace id, key) of a values route whose raw path the router would read the same."""
    path = raw_path.split("?", 1)[0]
    for char in _ROUTER_DECIDES:
        if char in path:
            return None
    parts = path.split("/", KEY_SEGMENT)
    if len(parts) <= KEY_SEGMENT:
        return None
    for index, word in _VALUES_SHAPE:
        if parts[index] != word:
            return None
    if not parts[_ACCOUNT] or not parts[_NAMESPACE]:
        return None
    return parts[_NAMESPACE], unquote_to_bytes(parts[KEY_SEGMENT])


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
        client_disconnected: Callable[[], object] | None = None,
    ) -> None:
        self.operations = operations
        self.reads = reads
        self.authorize = authorize
        self.observe = observe
        self.guard = guard
        self.calls = calls
        self.client_disconnected = client_disconnected
        # The guard asks the same checker as the authorization (one call answers both).
        self._one_check = guard.token_status is None or guard.token_status == authorize

    # ---- the two ways in ------------------------------------------------

    def middleware(self) -> Middleware:
        """For requests aiohttp routed: everything but what ``before_routing`` answered."""

        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            if workers_binding.is_binding_request(request):
                return await self.through(request, workers_binding.route_name(request), None)
            return await self.through(
                request, request.match_info.route.name or "unmatched", handler
            )

        return middleware

    def before_routing(self, routed: RequestHandler) -> RequestHandler:
        """A server's request handler: the hot routes here, the rest to ``routed``."""
        operations, reads = self.operations, self.reads

        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            if not isinstance(request, web.Request) or "Expect" in request.headers:
                return await routed(request)
            if workers_binding.is_binding_request(request):
                return await self.through(request, workers_binding.route_name(request), None)
            route = _VALUE_ROUTES.get(request.method)
            target = None if route is None else values_target(request.raw_path)
            if route is None or target is None:
                return await routed(request)
            namespace_id, key = target
            if route == "values.get":
                return await self.through(
                    request,
                    route,
                    lambda request: answer_get(request, operations, reads, namespace_id, key),
                )
            if route == "values.update":
                return await self.through(
                    request,
                    route,
                    lambda request: answer_put(request, operations, namespace_id, key),
                )
            return await self.through(
                request, route, lambda request: answer_delete(operations, namespace_id, key)
            )

        return handle

    # ---- every request --------------------------------------------------

    async def through(
        self, request: web.Request, route: str, handler: Handler | None
    ) -> web.StreamResponse:
        """``request`` checked and answered by ``handler`` (None: the Workers binding)."""
        started = time.perf_counter()
        status = 500
        try:
            response = await self._admitted(request, handler)
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
            if _peer_gone(request):
                status = 0
                self._disconnected()
            raise
        finally:
            if status and self.observe is not None:
                self.observe("http", route, status, time.perf_counter() - started)

    def _disconnected(self) -> None:
        if self.client_disconnected is not None:
            self.client_disconnected()

    async def _admitted(self, request: web.Request, handler: Handler | None) -> web.StreamResponse:
        """The answer, once the request passed the cross-site checks and the call budget."""
        binding = handler is None
        path = request.path
        public = not binding and path in PUBLIC_PATHS
        authorization = request.headers.get("Authorization")
        denied = None
        if self.authorize is not None:
            denied = self.authorize(authorization)
        if self._one_check:
            token_valid = self.guard.token_status is not None and denied is None
        else:
            token_valid = self.guard.token_valid(authorization)
        refusal = self.guard.refusal(request, binding=binding, token_valid=token_valid)
        if refusal is not None:
            return _refused(binding, HTTP_FORBIDDEN, refusal)
        budgeted = not public
        if budgeted:
            try:
                self.calls.enter()
            except RumorError as error:
                return _refused(binding, status_of(error).http_status, str(error))
        try:
            if handler is None:
                # Before any routing: a binding's keys may be named "metrics" or "client/v4/…".
                return await workers_binding.answer(request, self.operations, denied, self.reads)
            # The web console checks its own session cookie or token (console.py).
            console = path == CONSOLE_ROOT or path.startswith(CONSOLE_ROOT + "/")
            if denied is not None and not public and not console:
                return failure(denied, CODE_AUTH, "Authentication error")
            return await _answer(request, handler, public)
        finally:
            if budgeted:
                self.calls.leave()


def _refused(binding: bool, status: int, message: str) -> web.Response:
    if binding:
        return workers_binding.failure(status, message)
    return failure(status, CODE_AUTH if status == HTTP_FORBIDDEN else CODE_INTERNAL, message)


async def _answer(request: web.Request, handler: Handler, public: bool) -> web.StreamResponse:
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
    except ConnectionError:
        raise  # the client went away: not an error (``Entry.through``)
    except Exception as error:
        _throttled.error(
            "http.internal_error", (request.path, type(error).__name__), exc_info=error
        )
        return failure(500, CODE_INTERNAL, "internal error")
