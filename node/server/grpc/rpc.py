"""Registering a servicer with grpc.aio: safe decoding, request ids, error mapping.

Handlers are built from the service's descriptor rather than the generated
``add_*_to_server`` so that every method gets the same treatment (a unary-unary
method in one coroutine, ``unary_call``; the steps all shapes share are
``call_steps``'s):
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
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from rumor.node.core.errors import InvalidRequest, RumorError
from rumor.node.server.admission import CallBudget
from rumor.node.server.auth import API_TOKEN_REFUSED
from rumor.node.server.grpc.call_steps import (
    HTTP_STATUS_HEADER,
    Authorize,
    Authorizer,
    Context,
    Malformed,
    Observe,
    bind,
    code_name,
    deserializer,
    fail,
    own_trailers,
    remember_metadata,
    report_end,
    serialize,
)
from rumor.node.server.grpc.unary_call import unary_call
from rumor.node.server.release import METADATA

__all__ = [
    "CLIENT_PEER_HEADER",
    "HTTP_STATUS_HEADER",
    "UNAUTHENTICATED_DETAILS",
    "Authorize",
    "Authorizer",
    "Context",
    "Observe",
    "method_handler",
    "own_trailers",
    "service_handler",
]

UNAUTHENTICATED_DETAILS = API_TOKEN_REFUSED
# The client's address, as a worker forwarding its call names it (to its owner only).
CLIENT_PEER_HEADER = "rumor-client-peer"
# Streams bounded by their own limit (watchers per node and per connection).
# Batch bounds the operations it holds per stream, and its reads take from the read budget.
UNBUDGETED_METHODS = frozenset({"Watch", "Batch"})


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, Malformed):
            raise InvalidRequest(request.reason)
        yield request


async def _authorize(authorize: Authorize | None, name: str, context: Any) -> None:
    if authorize is not None and not authorize.authenticate(name, context.invocation_metadata()):
        await context.abort(
            grpc.StatusCode.UNAUTHENTICATED, authorize.refusal, trailing_metadata=METADATA
        )


async def _permit(authorize: Authorize, name: str, request: Any, context: Any) -> None:
    if isinstance(request, Malformed):
        return  # refused INVALID_ARGUMENT by the call itself
    try:
        await authorize.permit(name, request)
    except RumorError as error:
        await fail(context, error)


async def _permitted(
    authorize: Authorize, name: str, requests: AsyncIterator[Any]
) -> AsyncIterator[Any]:
    """A client stream whose every message the caller may send (else PermissionDenied)."""
    async for request in requests:
        if not isinstance(request, Malformed):
            await authorize.permit(name, request)
        yield request


def _guard_stream_unary(
    behavior: Callable[[Any, Any], Any],
    name: str,
    authorize: Authorize | None,
    observe: Observe | None,
) -> Callable[[Any, Any], Any]:
    """Wraps a stream-unary behavior with the hooks."""

    async def guarded(request: Any, context: Any) -> Any:
        start = time.perf_counter()
        status = "UNKNOWN"
        response = None
        try:
            await _authorize(authorize, name, context)
            if authorize is not None:
                request = _permitted(authorize, name, request)
            response = await behavior(request, context)
            status = code_name(context, "OK")
            return response
        except grpc.aio.AbortError:
            status = code_name(context, "UNKNOWN")
            raise
        except asyncio.CancelledError:
            status = "CANCELLED"
            raise
        finally:
            report_end(authorize, observe, name, None, response, status, start)

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
            status = code_name(context, "OK")
        except grpc.aio.AbortError:
            status = code_name(context, "UNKNOWN")
            raise
        except (asyncio.CancelledError, GeneratorExit):
            status = "CANCELLED"
            raise
        finally:
            report_end(authorize, observe, name, None if streamed else request, None, status, start)

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
    if method.client_streaming or method.server_streaming:
        return _streaming_handler(method, implementation, authorize, observe, budget)
    name = method.name
    request_class = message_factory.GetMessageClass(method.input_type)
    if budget is not None and name in UNBUDGETED_METHODS:
        budget = None
    unary = unary_call(name, implementation, authorize, observe, budget)
    return grpc.unary_unary_rpc_method_handler(unary, deserializer(request_class), serialize)


def _streaming_handler(
    method: MethodDescriptor,
    implementation: Callable[..., Any],
    authorize: Authorize | None,
    observe: Observe | None,
    budget: CallBudget | None,
) -> grpc.RpcMethodHandler[Any, Any]:
    if budget is not None and method.name not in UNBUDGETED_METHODS:
        if method.server_streaming:
            implementation = _budgeted_stream(implementation, budget)
        else:
            implementation = _budgeted_unary(implementation, budget)
    request_class = message_factory.GetMessageClass(method.input_type)
    deserialize = deserializer(request_class)
    hooked = authorize is not None or observe is not None
    name = method.name
    if method.client_streaming and method.server_streaming:  # Batch
        both = _stream_stream(name, implementation)
        if hooked:
            both = _guard_stream(both, name, authorize, observe, True)
        return grpc.stream_stream_rpc_method_handler(both, deserialize, serialize)
    if method.client_streaming:
        unary = _stream_unary(name, implementation)
        if hooked:
            unary = _guard_stream_unary(unary, name, authorize, observe)
        return grpc.stream_unary_rpc_method_handler(unary, deserialize, serialize)
    if method.server_streaming:
        stream = _unary_stream(name, implementation)
        if hooked:
            stream = _guard_stream(stream, name, authorize, observe, False)
        return grpc.unary_stream_rpc_method_handler(stream, deserialize, serialize)
    raise ValueError(f"{name} streams neither its request nor its answer")


# ---- the behaviour of each call shape: bind the method name, map errors to statuses ----


def _stream_unary(name: str, implementation: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    async def stream_unary(requests: Any, context: Any) -> Any:
        bind(name, context)
        try:
            return await implementation(_checked_stream(requests), context)
        except Exception as error:
            await fail(context, error)

    return stream_unary


def _unary_stream(
    name: str, implementation: Callable[..., Any]
) -> Callable[[Any, Any], AsyncIterator[Any]]:
    async def unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
        bind(name, context)
        try:
            if isinstance(request, Malformed):
                raise InvalidRequest(request.reason)
            async for response in implementation(request, context):
                yield response
        except Exception as error:
            await fail(context, error)

    return unary_stream


def _stream_stream(
    name: str, implementation: Callable[..., Any]
) -> Callable[[Any, Any], AsyncIterator[Any]]:
    async def stream_stream(requests: Any, context: Any) -> AsyncIterator[Any]:
        bind(name, context)
        try:
            async for response in implementation(_checked_stream(requests), context):
                yield response
        except Exception as error:
            await fail(context, error)

    return stream_stream


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
    return _ServiceHandlers(service.full_name, handlers)


if TYPE_CHECKING:  # generic in the stubs only
    _ServiceRpcHandler = grpc.ServiceRpcHandler[Any, Any]
else:
    _ServiceRpcHandler = grpc.ServiceRpcHandler


class _ServiceHandlers(_ServiceRpcHandler):
    """A service's method handlers by path (``grpc.method_handlers_generic_handler``'s
    lookup) that keep, for the call, the invocation metadata the lookup is given."""

    def __init__(self, name: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]) -> None:
        self._name = name
        self._by_path = {f"/{name}/{method}": handler for method, handler in handlers.items()}

    def service_name(self) -> str:
        return self._name

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = self._by_path.get(handler_call_details.method)
        if handler is not None:
            remember_metadata(handler_call_details.invocation_metadata)
        return handler
