"""Registering a servicer with grpc.aio: safe decoding, request ids, error mapping.

Handlers are built from the service's descriptor rather than the generated
``add_*_to_server`` so that every method gets the same treatment:
- a request that fails to decode is answered INVALID_ARGUMENT (grpc.aio
  itself would answer UNKNOWN) and never reaches the servicer;
- a request id is bound into the structlog context for the call;
- every answer, an error too, carries the node's release and protocol as
  trailing metadata (``rumor-version``, ``rumor-protocol``: ``release``);
- a ``RumorError`` becomes its status (``errors.status_of``) with its message
  word for word; anything else is logged with its traceback and answered
  INTERNAL — a bad request never takes the node down.

Two optional hooks, both free when unset: ``authorize`` (an ``Authorizer``)
authenticates each call's invocation metadata before anything else (a call it
refuses is aborted UNAUTHENTICATED with its ``refusal``, which names the
credential the call lacks: an API token, the cluster secret), then is shown
the method and each request message before the servicer sees it (``permit``
raising ``PermissionDenied`` aborts the call PERMISSION_DENIED), and is told
how the call ended (``ended``: the audit trail); ``observe(api, method,
status_name, seconds)`` is told the outcome and duration of every call, OK or
not. A ``CallBudget`` (clients' services only) bounds the calls served at
once: one beyond it is answered RESOURCE_EXHAUSTED before its request is
looked at. Streams that hold a bound of their own (Watch) do not take from it.
"""

from __future__ import annotations

import asyncio
import random
import time
import traceback
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import grpc
import grpc.aio
import structlog
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from rumor.node.core.errors import InvalidRequest, RumorError
from rumor.node.server.admission import CallBudget
from rumor.node.server.auth import API_TOKEN_REFUSED
from rumor.node.server.errors import status_of
from rumor.node.server.log_throttle import LogThrottle
from rumor.node.server.release import METADATA

log = structlog.get_logger(__name__)
_throttled = LogThrottle(log)
# Streams bounded by their own limit (watchers per node and per connection).
# Batch bounds the operations it holds per stream, and its reads take from the read budget.
UNBUDGETED_METHODS = frozenset({"Watch", "Batch"})

# A call's context as grpc.aio hands it to a servicer.
Context = grpc.aio.ServicerContext[Any, Any]
Observe = Callable[[str, str, str, float], None]

UNAUTHENTICATED_DETAILS = API_TOKEN_REFUSED
HTTP_STATUS_HEADER = "rumor-http-status"
# The client's address, as a worker forwarding its call names it (to its owner only).
CLIENT_PEER_HEADER = "rumor-client-peer"
# StatusCode names by the enum and by its integer value (what aio contexts may return).
_CODE_NAMES: dict[object, str] = {}
for _code in grpc.StatusCode:
    _CODE_NAMES[_code] = _code.name
    _CODE_NAMES[_code.value[0]] = _code.name


class Authorizer(Protocol):
    """Who may call a service's methods (``access`` and ``security`` implement it)."""

    @property
    def refusal(self) -> str:
        """What a call whose credentials are refused is told: the credential it lacks."""
        ...

    def authenticate(self, method: str, metadata: Any) -> bool:
        """Whether the call's credentials are known; may remember the caller for ``permit``."""
        ...

    async def permit(self, method: str, request: Any) -> None:
        """Raise a ``RumorError`` (``PermissionDenied``) when the caller may not make this call."""
        ...

    def ended(self, method: str, request: Any, response: Any, status: str) -> None:
        """The call ended with ``status`` (a StatusCode name); ``request`` and
        ``response`` are None for a streamed request or answer."""
        ...


Authorize = Authorizer


class _Malformed:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _deserializer(message_class: type[Message]) -> Callable[[bytes], Any]:
    from_string = message_class.FromString

    def deserialize(data: bytes) -> Any:
        try:
            return from_string(data)
        except (DecodeError, RuntimeError, ValueError) as exc:
            return _Malformed(f"malformed {message_class.__name__}: {exc}")

    return deserialize


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


async def _fail(context: grpc.aio.ServicerContext[Any, Any], error: BaseException) -> None:
    if isinstance(error, grpc.aio.AbortError):
        raise error
    # The abort below keeps ``error`` (as its context), and with it every frame it passed
    # through: let go of their locals (a stream's received bytes) now, not at the
    # collector's next full pass, which on an idle node may be minutes away.
    if isinstance(error, RumorError):
        traceback.clear_frames(error.__traceback__)
        status = status_of(error)
        # The HTTP status travels too, so the SDK can word its errors as workerd
        # does (``KV PUT failed: 413 ...``) without guessing from the gRPC code.
        await context.abort(
            status.grpc_code,
            str(error),
            trailing_metadata=((HTTP_STATUS_HEADER, str(status.http_status)), *METADATA),
        )
    _throttled.error("rpc.internal_error", type(error).__name__, error=repr(error), exc_info=error)
    traceback.clear_frames(error.__traceback__)
    await context.abort(
        grpc.StatusCode.INTERNAL, f"internal error: {error!r}", trailing_metadata=METADATA
    )


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, _Malformed):
            raise InvalidRequest(request.reason)
        yield request


def _bind(name: str, context: Any) -> None:
    context.set_trailing_metadata(METADATA)
    # 12 hex digits: the id only tells one call's log lines from another's, so the
    # Mersenne Twister does (os.urandom is a system call on every request).
    structlog.contextvars.bind_contextvars(rpc=name, request_id=f"{random.getrandbits(48):012x}")


def _code_name(context: Any, default: str) -> str:
    """The status a call ended with as a StatusCode name (``default`` when unset)."""
    try:
        code = context.code()
    except (AttributeError, NotImplementedError):
        return default
    if code is None:
        return default
    return _CODE_NAMES.get(code, default)


async def _authorize(authorize: Authorize | None, name: str, context: Any) -> None:
    if authorize is not None and not authorize.authenticate(name, context.invocation_metadata()):
        await context.abort(
            grpc.StatusCode.UNAUTHENTICATED, authorize.refusal, trailing_metadata=METADATA
        )


async def _permit(authorize: Authorize, name: str, request: Any, context: Any) -> None:
    if isinstance(request, _Malformed):
        return  # refused INVALID_ARGUMENT by the call itself
    try:
        await authorize.permit(name, request)
    except RumorError as error:
        await _fail(context, error)


async def _permitted(
    authorize: Authorize, name: str, requests: AsyncIterator[Any]
) -> AsyncIterator[Any]:
    """A client stream whose every message the caller may send (else PermissionDenied)."""
    async for request in requests:
        if not isinstance(request, _Malformed):
            await authorize.permit(name, request)
        yield request


def _guard_unary(
    behavior: Callable[[Any, Any], Any],
    name: str,
    authorize: Authorize | None,
    observe: Observe | None,
    streamed: bool,
) -> Callable[[Any, Any], Any]:
    """Wraps a unary-response behavior (unary-unary or stream-unary) with the hooks."""

    async def guarded(request: Any, context: Any) -> Any:
        start = time.perf_counter()
        status = "UNKNOWN"
        response = None
        try:
            await _authorize(authorize, name, context)
            if authorize is not None:
                if streamed:
                    request = _permitted(authorize, name, request)
                else:
                    await _permit(authorize, name, request, context)
            response = await behavior(request, context)
            status = _code_name(context, "OK")
            return response
        except grpc.aio.AbortError:
            status = _code_name(context, "UNKNOWN")
            raise
        except asyncio.CancelledError:
            status = "CANCELLED"
            raise
        finally:
            if authorize is not None:
                authorize.ended(name, None if streamed else request, response, status)
            if observe is not None:
                observe("grpc", name, status, time.perf_counter() - start)

    return guarded


def _guard_stream(
    behavior: Callable[[Any, Any], AsyncIterator[Any]],
    name: str,
    authorize: Authorize | None,
    observe: Observe | None,
    streamed: bool,
) -> Callable[[Any, Any], AsyncIterator[Any]]:
    """Wraps a server-streaming behavior with the hooks; the time covers the whole stream."""

    async def guarded(request: Any, context: Any) -> AsyncIterator[Any]:
        start = time.perf_counter()
        status = "UNKNOWN"
        try:
            await _authorize(authorize, name, context)
            if authorize is not None:
                if streamed:
                    request = _permitted(authorize, name, request)
                else:
                    await _permit(authorize, name, request, context)
            async for response in behavior(request, context):
                yield response
            status = _code_name(context, "OK")
        except grpc.aio.AbortError:
            status = _code_name(context, "UNKNOWN")
            raise
        except (asyncio.CancelledError, GeneratorExit):
            status = "CANCELLED"
            raise
        finally:
            if authorize is not None:
                authorize.ended(name, None if streamed else request, None, status)
            if observe is not None:
                observe("grpc", name, status, time.perf_counter() - start)

    return guarded


def _budgeted_unary(implementation: Callable[..., Any], budget: CallBudget) -> Callable[..., Any]:
    async def budgeted(request: Any, context: Any) -> Any:
        budget.enter()
        try:
            return await implementation(request, context)
        finally:
            budget.leave()

    return budgeted


def _budgeted_stream(
    implementation: Callable[..., AsyncIterator[Any]], budget: CallBudget
) -> Callable[..., AsyncIterator[Any]]:
    async def budgeted(request: Any, context: Any) -> AsyncIterator[Any]:
        budget.enter()
        try:
            async for response in implementation(request, context):
                yield response
        finally:
            budget.leave()

    return budgeted


def method_handler(
    method: MethodDescriptor,
    implementation: Callable[..., Any],
    authorize: Authorize | None = None,
    observe: Observe | None = None,
    budget: CallBudget | None = None,
) -> grpc.RpcMethodHandler[Any, Any]:
    if budget is not None and method.name not in UNBUDGETED_METHODS:
        if method.server_streaming:
            implementation = _budgeted_stream(implementation, budget)
        else:
            implementation = _budgeted_unary(implementation, budget)
    request_class = message_factory.GetMessageClass(method.input_type)
    deserialize = _deserializer(request_class)
    hooked = authorize is not None or observe is not None
    name = method.name
    if method.client_streaming and method.server_streaming:  # Batch
        both = _stream_stream(name, implementation)
        if hooked:
            both = _guard_stream(both, name, authorize, observe, True)
        return grpc.stream_stream_rpc_method_handler(both, deserialize, _serialize)
    if method.client_streaming:
        unary = _stream_unary(name, implementation)
        if hooked:
            unary = _guard_unary(unary, name, authorize, observe, True)
        return grpc.stream_unary_rpc_method_handler(unary, deserialize, _serialize)
    if method.server_streaming:
        stream = _unary_stream(name, implementation)
        if hooked:
            stream = _guard_stream(stream, name, authorize, observe, False)
        return grpc.unary_stream_rpc_method_handler(stream, deserialize, _serialize)
    unary = _unary_unary(name, implementation)
    if hooked:
        unary = _guard_unary(unary, name, authorize, observe, False)
    return grpc.unary_unary_rpc_method_handler(unary, deserialize, _serialize)


# ---- the behaviour of each call shape: bind the method name, map errors to statuses ----


def _stream_unary(name: str, implementation: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    async def stream_unary(requests: Any, context: Any) -> Any:
        _bind(name, context)
        try:
            return await implementation(_checked_stream(requests), context)
        except Exception as error:
            await _fail(context, error)

    return stream_unary


def _unary_stream(
    name: str, implementation: Callable[..., Any]
) -> Callable[[Any, Any], AsyncIterator[Any]]:
    async def unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
        _bind(name, context)
        try:
            if isinstance(request, _Malformed):
                raise InvalidRequest(request.reason)
            async for response in implementation(request, context):
                yield response
        except Exception as error:
            await _fail(context, error)

    return unary_stream


def _stream_stream(
    name: str, implementation: Callable[..., Any]
) -> Callable[[Any, Any], AsyncIterator[Any]]:
    async def stream_stream(requests: Any, context: Any) -> AsyncIterator[Any]:
        _bind(name, context)
        try:
            async for response in implementation(_checked_stream(requests), context):
                yield response
        except Exception as error:
            await _fail(context, error)

    return stream_stream


def _unary_unary(name: str, implementation: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    async def unary_unary(request: Any, context: Any) -> Any:
        _bind(name, context)
        try:
            if isinstance(request, _Malformed):
                raise InvalidRequest(request.reason)
            return await implementation(request, context)
        except Exception as error:
            await _fail(context, error)

    return unary_unary


def service_handler(
    service: ServiceDescriptor,
    servicer: object,
    *,
    authorize: Authorize | None = None,
    observe: Observe | None = None,
    budget: CallBudget | None = None,
) -> grpc.GenericRpcHandler[Any, Any]:
    """A handler for every method of ``service``, each calling ``servicer.<MethodName>``.

    ``authorize`` refusing a call's credentials aborts it UNAUTHENTICATED before
    the request is looked at, refusing the call itself PERMISSION_DENIED;
    ``observe("grpc", method, status, seconds)``
    is called once every call is over; ``budget`` bounds the calls served at once.
    """
    handlers = {
        method.name: method_handler(
            method, getattr(servicer, method.name), authorize, observe, budget
        )
        for method in service.methods
    }
    return grpc.method_handlers_generic_handler(service.full_name, handlers)
