"""Registering a servicer with grpc.aio: safe decoding, request ids, error mapping.

Handlers are built from the service's descriptor rather than the generated
``add_*_to_server`` so that every method gets the same treatment:
- a request that fails to decode is answered INVALID_ARGUMENT (grpc.aio
  itself would answer UNKNOWN) and never reaches the servicer;
- a request id is bound into the structlog context for the call;
- a ``RumorError`` becomes its status (``errors.status_of``) with its message
  word for word; anything else is logged with its traceback and answered
  INTERNAL — a bad request never takes the node down.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio
import structlog
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from rumor.node.core.errors import InvalidRequest, RumorError
from rumor.node.server.errors import status_of

log = structlog.get_logger(__name__)


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
    if isinstance(error, RumorError):
        await context.abort(status_of(error).grpc_code, str(error))
    log.exception("rpc.internal_error", error=repr(error))
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {error!r}")


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, _Malformed):
            raise InvalidRequest(request.reason)
        yield request


def _bind(name: str) -> None:
    structlog.contextvars.bind_contextvars(rpc=name, request_id=os.urandom(6).hex())


def _handler(
    method: MethodDescriptor, implementation: Callable[..., Any]
) -> grpc.RpcMethodHandler[Any, Any]:
    request_class = message_factory.GetMessageClass(method.input_type)
    deserialize = _deserializer(request_class)
    name = method.name

    if method.client_streaming and not method.server_streaming:

        async def stream_unary(requests: Any, context: Any) -> Any:
            _bind(name)
            try:
                return await implementation(_checked_stream(requests), context)
            except Exception as error:
                await _fail(context, error)

        return grpc.stream_unary_rpc_method_handler(stream_unary, deserialize, _serialize)

    if method.server_streaming and not method.client_streaming:

        async def unary_stream(request: Any, context: Any) -> Any:
            _bind(name)
            try:
                if isinstance(request, _Malformed):
                    raise InvalidRequest(request.reason)
                async for response in implementation(request, context):
                    yield response
            except Exception as error:
                await _fail(context, error)

        return grpc.unary_stream_rpc_method_handler(unary_stream, deserialize, _serialize)

    if method.client_streaming:
        raise NotImplementedError(f"{method.full_name}: bidirectional streams are not used")

    async def unary_unary(request: Any, context: Any) -> Any:
        _bind(name)
        try:
            if isinstance(request, _Malformed):
                raise InvalidRequest(request.reason)
            return await implementation(request, context)
        except Exception as error:
            await _fail(context, error)

    return grpc.unary_unary_rpc_method_handler(unary_unary, deserialize, _serialize)


def service_handler(
    service: ServiceDescriptor, servicer: object
) -> grpc.GenericRpcHandler[Any, Any]:
    """A handler for every method of ``service``, each calling ``servicer.<MethodName>``."""
    handlers = {
        method.name: _handler(method, getattr(servicer, method.name)) for method in service.methods
    }
    return grpc.method_handlers_generic_handler(service.full_name, handlers)
