"""What each call may do: the rules of every gRPC method and HTTP route, and the checks.

``KV_RULES`` and ``HTTP_RULES`` say, as data, which scope each gRPC method and
each HTTP route needs (``auth.Scope``) and where its namespaces are; a Batch
frame's operations are checked one by one as the unary calls they stand for
(``BATCH_OP_RULES``). ``permits`` decides against the caller's ``auth.Grant``;
a refusal is ``PermissionDenied`` (gRPC PERMISSION_DENIED, HTTP 403 with
Cloudflare's code 10000), written to the audit trail with the token's id.

``KvAccess`` is the KV service's ``rpc.Authorizer``, ``HttpAccess`` the HTTP
listener's (REST API, Workers binding, console). Both find the caller's grant
(``auth.TokenChecker``), keep it as ``auth.caller()`` for the rest of the call
(listings show only the namespaces it reaches: ``visible``), and log namespace
changes to the audit trail. A token limited by title prefix needs titles:
``titles_of`` reads them from the node's operations, a worker asks its owner.
"""

from __future__ import annotations

import contextvars
import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rumor.node.core.errors import PermissionDenied, RumorError
from rumor.node.server.audit import OPEN_CALLER, AuditLog
from rumor.node.server.auth import (
    API_TOKEN_REFUSED,
    DENIED_MESSAGE,
    HTTP_FORBIDDEN,
    HTTP_UNAUTHORIZED,
    WORKER_KEY_HEADER,
    Grant,
    Metadata,
    Scope,
    TokenChecker,
    authorization_of,
    bearer,
    caller,
    set_caller,
)

Titles = Callable[[str], Awaitable[str | None]]  # a namespace's title, None when unknown

BatchOpCheck = Callable[[str, Any], Awaitable[None]]
# How the call being served checks each operation of a Batch frame (None: no need).
_BATCH_CHECK: contextvars.ContextVar[BatchOpCheck | None] = contextvars.ContextVar(
    "batch_check", default=None
)


def batch_op_check() -> BatchOpCheck | None:
    """What checks each Batch operation of the call being served; None when every
    operation is allowed (no tokens, or a token with ``admin`` on every namespace)."""
    grant = caller()
    if grant is None or (Scope.ADMIN in grant.scopes and not grant.limited):
        return None
    return _BATCH_CHECK.get()


def titles_of(lookup: Callable[[str], Any]) -> Titles:
    """``Titles`` from a namespace lookup (``Operations.get_namespace``) that raises
    when the namespace is unknown."""

    async def title(namespace_id: str) -> str | None:
        try:
            return str(lookup(namespace_id).title)
        except RumorError:
            return None

    return title


# ---- what each call needs -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """A namespace a call acts on: its id, or (a namespace being named) only its title.

    ``every``: all namespaces at once (a Watch of every namespace).
    """

    namespace_id: str | None = None
    title: str | None = None
    every: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    scope: Scope | None  # None: any known token
    targets: Callable[[Any], tuple[Target, ...]]


def _none(_: Any) -> tuple[Target, ...]:
    return ()


def _namespace(request: Any) -> tuple[Target, ...]:
    return (Target(request.namespace_id),)


def _created(request: Any) -> tuple[Target, ...]:
    return (Target(title=request.title),)


def _renamed(request: Any) -> tuple[Target, ...]:
    return (Target(request.namespace_id), Target(title=request.title))


def _streamed_put(request: Any) -> tuple[Target, ...]:
    return (Target(request.header.namespace_id),) if request.HasField("header") else ()


def _watched(request: Any) -> tuple[Target, ...]:
    return (Target(every=True),) if request.all_namespaces else (Target(request.namespace_id),)


# gRPC KV methods. Batch is checked per operation (``BATCH_OP_RULES``); the
# request of a client-streaming method is checked message by message.
KV_RULES: dict[str, Rule] = {
    "CreateNamespace": Rule(Scope.ADMIN, _created),
    "ListNamespaces": Rule(Scope.READ, _none),  # the answer is filtered (``visible``)
    "GetNamespace": Rule(Scope.READ, _namespace),
    "RenameNamespace": Rule(Scope.ADMIN, _renamed),
    "DeleteNamespace": Rule(Scope.ADMIN, _namespace),
    "Put": Rule(Scope.WRITE, _namespace),
    "PutStream": Rule(Scope.WRITE, _streamed_put),
    "Get": Rule(Scope.READ, _namespace),
    "GetStream": Rule(Scope.READ, _namespace),
    "BulkGet": Rule(Scope.READ, _namespace),
    "Delete": Rule(Scope.WRITE, _namespace),
    "List": Rule(Scope.READ, _namespace),
    "BulkPut": Rule(Scope.WRITE, _namespace),
    "BulkDelete": Rule(Scope.WRITE, _namespace),
    "Watch": Rule(Scope.READ, _watched),
    "Listeners": Rule(None, _none),
    "Batch": Rule(None, _none),
}
# A Batch operation, by the name of its oneof field: the unary call it stands for.
BATCH_OP_METHODS: dict[str, str] = {
    "get": "Get",
    "bulk_get": "BulkGet",
    "put": "Put",
    "delete": "Delete",
    "list": "List",
}
BATCH_OP_RULES: dict[str, Rule] = {
    field: KV_RULES[method] for field, method in BATCH_OP_METHODS.items()
}


def _path_namespace(match: Any) -> tuple[Target, ...]:
    return (Target(match["namespace_id"]),)


# HTTP routes by name (the console's without their ``console.`` prefix). The
# targets read the route's match info (the binding's: its namespace header); a
# namespace's new title is checked by the route itself (``require_title``).
HTTP_RULES: dict[str, Rule] = {
    "namespaces.create": Rule(Scope.ADMIN, _none),
    "namespaces.list": Rule(Scope.READ, _none),
    "namespaces.get": Rule(Scope.READ, _path_namespace),
    "namespaces.update": Rule(Scope.ADMIN, _path_namespace),
    "namespaces.delete": Rule(Scope.ADMIN, _path_namespace),
    "keys.list": Rule(Scope.READ, _path_namespace),
    "values.get": Rule(Scope.READ, _path_namespace),
    "values.update": Rule(Scope.WRITE, _path_namespace),
    "values.delete": Rule(Scope.WRITE, _path_namespace),
    "metadata.get": Rule(Scope.READ, _path_namespace),
    "bulk.update": Rule(Scope.WRITE, _path_namespace),
    "bulk.delete": Rule(Scope.WRITE, _path_namespace),
    "bulk.delete_post": Rule(Scope.WRITE, _path_namespace),
    "bulk.get": Rule(Scope.READ, _path_namespace),
    "memberships.list": Rule(None, _none),
    "tokens.verify": Rule(None, _none),
    "status": Rule(Scope.READ, _none),
    "events": Rule(Scope.READ, _none),
    "experiments": Rule(Scope.READ, _none),
    "binding.get": Rule(Scope.READ, _path_namespace),
    "binding.list": Rule(Scope.READ, _path_namespace),
    "binding.bulk_get": Rule(Scope.READ, _path_namespace),
    "binding.put": Rule(Scope.WRITE, _path_namespace),
    "binding.delete": Rule(Scope.WRITE, _path_namespace),
}


def http_rule(route: str) -> Rule | None:
    """The rule of an HTTP route name (``console.`` prefix and experiment pages folded)."""
    name = route.removeprefix("console.")
    if name.startswith("experiments"):
        name = "experiments"
    return HTTP_RULES.get(name)


async def permits(
    grant: Grant | None, scope: Scope | None, targets: Iterable[Target], titles: Titles
) -> bool:
    """Whether ``grant`` (None: the API is open) may act with ``scope`` on ``targets``."""
    if grant is None:
        return True
    if scope is not None and not grant.has(scope):
        return False
    if not grant.limited:
        return True
    for target in targets:
        if target.every:
            return False
        title = target.title
        if title is None and target.namespace_id is not None and grant.by_title:
            title = await titles(target.namespace_id)
        if not grant.covers(target.namespace_id, title):
            return False
    return True


async def require(grant: Grant | None, rule: Rule, request: Any, titles: Titles, what: str) -> None:
    """Raise ``PermissionDenied`` unless ``grant`` may make the call ``rule`` describes."""
    targets = rule.targets(request)
    if not await permits(grant, rule.scope, targets, titles):
        raise denied(grant, rule.scope, targets, what)


def denied(
    grant: Grant | None, scope: Scope | None, targets: Iterable[Target], what: str
) -> PermissionDenied:
    named = [t.namespace_id or t.title or "" for t in targets if not t.every]
    where = f" on namespace {', '.join(n for n in named if n)}" if any(named) else ""
    need = f" needs {scope.value}" if scope is not None else ""
    held = grant.describe() if grant is not None else "nothing"
    return PermissionDenied(
        f"{DENIED_MESSAGE}: {what}{where}{need}; the token holds {held}",
        token_id=grant.token_id if grant is not None else None,
        scope=scope.value if scope is not None else None,
        namespaces=tuple(n for n in named if n),
    )


def visible(grant: Grant | None, namespaces: Iterable[Any]) -> list[Any]:
    """The namespaces (anything with ``id`` and ``title``) ``grant`` may see listed."""
    if grant is None or not grant.limited:
        return list(namespaces)
    return [info for info in namespaces if grant.covers(info.id, info.title)]


def may_see(grant: Grant | None, info: Any) -> bool:
    """Whether ``grant`` may see the namespace ``info`` listed (``visible`` for one)."""
    return grant is None or not grant.limited or grant.covers(info.id, info.title)


# ---- the KV service's authorizer ---------------------------------------------

_NAMESPACE_EVENTS = {
    "CreateNamespace": "namespace.create",
    "RenameNamespace": "namespace.rename",
    "DeleteNamespace": "namespace.delete",
    "namespaces.create": "namespace.create",
    "namespaces.update": "namespace.rename",
    "namespaces.delete": "namespace.delete",
}


def caller_id(grant: Grant | None) -> str:
    return grant.token_id if grant is not None else OPEN_CALLER


def audit_refusal(
    audit: AuditLog | None, api: str, operation: str, error: PermissionDenied
) -> None:
    if audit is not None:
        audit.record(
            "refused",
            token=error.token_id,
            api=api,
            operation=operation,
            scope=error.scope,
            namespaces=list(error.namespaces),
        )


def audit_namespace_change(
    audit: AuditLog | None,
    api: str,
    operation: str,
    grant: Grant | None,
    namespace_id: str | None,
    title: str | None,
    outcome: object,
) -> None:
    event = _NAMESPACE_EVENTS.get(operation.removeprefix("console."))
    if audit is None or event is None:
        return
    audit.record(
        event,
        token=caller_id(grant),
        api=api,
        namespace=namespace_id or None,
        title=title,
        outcome=outcome,
    )


class KvAccess:
    """The KV service's ``rpc.Authorizer``: the token's grant against ``KV_RULES``.

    ``trusted``: methods served without a token (a node with workers: their
    Batch stream, on the owner's private socket, carries operations each worker
    already checked); ``worker_key``: the key a worker presents on its own calls
    (a namespace's title, for a token limited by title).
    """

    refusal = API_TOKEN_REFUSED

    def __init__(
        self,
        tokens: TokenChecker,
        titles: Titles,
        audit: AuditLog | None = None,
        trusted: frozenset[str] = frozenset(),
        worker_key: str | None = None,
    ) -> None:
        self.tokens = tokens
        self.titles = titles
        self.audit = audit
        self.trusted = trusted
        self.worker_key = worker_key.encode() if worker_key else None

    def _from_worker(self, metadata: Metadata) -> bool:
        if self.worker_key is None:
            return False
        for key, value in metadata or ():
            if key == WORKER_KEY_HEADER:
                given = value if isinstance(value, bytes) else value.encode()
                return hmac.compare_digest(given, self.worker_key)
        return False

    def authenticate(self, method: str, metadata: Metadata) -> bool:
        if not self.tokens.enabled or method in self.trusted or self._from_worker(metadata):
            set_caller(None)
            return True
        grant = self.tokens.grant_of(authorization_of(metadata))
        set_caller(grant)
        _BATCH_CHECK.set(self.permit_batch_op)
        return grant is not None

    async def permit(self, method: str, request: Any) -> None:
        rule = KV_RULES.get(method)
        if rule is None or caller() is None:
            return
        try:
            await require(caller(), rule, request, self.titles, method)
        except PermissionDenied as error:
            audit_refusal(self.audit, "grpc", method, error)
            raise

    def permits_at_once(self, method: str) -> bool:
        """Whether ``permit`` would let any ``method`` call through, known from the grant
        alone: no rule, an open API, or every namespace reached with the scope needed."""
        rule = KV_RULES.get(method)
        if rule is None:
            return True
        grant = caller()
        return grant is None or (
            not grant.limited and (rule.scope is None or grant.has(rule.scope))
        )

    async def permit_batch_op(self, field: str, request: Any) -> None:
        """One operation of a Batch frame (``field``: its oneof name), as its unary call."""
        rule = BATCH_OP_RULES.get(field)
        if rule is None or caller() is None:
            return
        method = BATCH_OP_METHODS[field]
        try:
            await require(caller(), rule, request, self.titles, method)
        except PermissionDenied as error:
            audit_refusal(self.audit, "grpc", method, error)
            raise

    def ended(self, method: str, request: Any, response: Any, status: str) -> None:
        if method in _NAMESPACE_EVENTS and request is not None:
            namespace_id = getattr(request, "namespace_id", None) or getattr(response, "id", None)
            audit_namespace_change(
                self.audit,
                "grpc",
                method,
                caller(),
                namespace_id,
                getattr(request, "title", None),
                status,
            )


# ---- the HTTP listener's authorizer -----------------------------------------


class HttpAccess:
    """The REST API's, the Workers binding's and the console's check: ``HTTP_RULES``.

    ``authenticate`` finds the caller of a request (kept for the request as
    ``caller()``); ``permit`` checks a route against the caller's grant;
    ``ended`` writes namespace changes to the audit trail.
    """

    def __init__(self, tokens: TokenChecker, titles: Titles, audit: AuditLog | None = None) -> None:
        self.tokens = tokens
        self.titles = titles
        self.audit = audit

    @property
    def enabled(self) -> bool:
        return self.tokens.enabled

    def authenticate(self, authorization: str | None) -> int | None:
        """None for a known token (or an open API); else 401 (missing, malformed) or 403."""
        if not self.tokens.enabled:
            set_caller(None)
            return None
        if bearer(authorization) is None:
            set_caller(None)
            return HTTP_UNAUTHORIZED
        grant = self.tokens.grant_of(authorization)
        set_caller(grant)
        return None if grant is not None else HTTP_FORBIDDEN

    async def permit(self, route: str, match: Any, api: str = "http") -> None:
        """Raise ``PermissionDenied`` unless the caller may use ``route`` on ``match``'s
        namespace (``match``: the route's match info, ``namespace_id`` among it)."""
        rule = http_rule(route)
        grant = caller()
        if rule is None or grant is None:
            return
        try:
            await require(grant, rule, match, self.titles, route)
        except PermissionDenied as error:
            audit_refusal(self.audit, api, route, error)
            raise

    def ended(self, route: str, namespace_id: str | None, title: str | None, status: int) -> None:
        audit_namespace_change(self.audit, "http", route, caller(), namespace_id, title, status)


def require_title(title: str) -> None:
    """A namespace about to be given ``title`` (create, rename): within the caller's reach."""
    grant = caller()
    if grant is not None and grant.limited and not grant.covers(None, title):
        raise denied(grant, Scope.ADMIN, (Target(title=title),), "naming a namespace")
