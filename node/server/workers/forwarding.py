"""Calls a worker passes to its owner as they are: bytes in, bytes out, status kept.

Admin, Faults and peer (Replication) calls, namespace calls, bulk writes,
streamed values and Watch need the owner's state; a worker forwards them
whole, with their deadline, and answers with the owner's answer or its exact
status, message and trailing metadata (the HTTP status the SDK reads). The
client's address travels as ``rumor-client-peer`` so the owner can count a
Watch against the client's connection rather than the worker's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import grpc
import grpc.aio
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from rumor.node.server.grpc.rpc import CLIENT_PEER_HEADER

# Headers gRPC sets by itself on each hop.
_HOP_HEADERS = frozenset(
    {"user-agent", "grpc-timeout", "te", "content-type", "grpc-accept-encoding"}
)


def _metadata(context: Any) -> tuple[tuple[str, str | bytes], ...]:
    forwarded = [
        (key, value)
        for key, value in (context.invocation_metadata() or ())
        if key not in _HOP_HEADERS and key != CLIENT_PEER_HEADER and not key.startswith(":")
    ]
    forwarded.append((CLIENT_PEER_HEADER, str(context.peer())))
    return tuple(forwarded)


def _timeout(context: Any) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else max(remaining, 0.0)


async def _fail(context: Any, error: grpc.aio.AioRpcError) -> None:
    await context.abort(error.code(), error.details() or "", tuple(error.trailing_metadata() or ()))


def _unary_unary(channel: grpc.aio.Channel, path: str) -> Callable[..., Any]:
    call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)

    async def forward(request: bytes, context: Any) -> bytes:
        try:
            return bytes(
                await call(request, timeout=_timeout(context), metadata=_metadata(context))
            )
        except grpc.aio.AioRpcError as error:
            await _fail(context, error)
            raise

    return forward


def _stream_unary(channel: grpc.aio.Channel, path: str) -> Callable[..., Any]:
    call = channel.stream_unary(path, request_serializer=None, response_deserializer=None)

    async def forward(requests: AsyncIterator[bytes], context: Any) -> bytes:
        try:
            return bytes(
                await call(requests, timeout=_timeout(context), metadata=_metadata(context))
            )
        except grpc.aio.AioRpcError as error:
            await _fail(context, error)
            raise

    return forward


def _unary_stream(channel: grpc.aio.Channel, path: str) -> Callable[..., Any]:
    call = channel.unary_stream(path, request_serializer=None, response_deserializer=None)

    async def forward(request: bytes, context: Any) -> AsyncIterator[bytes]:
        responses = call(request, timeout=_timeout(context), metadata=_metadata(context))
        try:
            initial = await responses.initial_metadata()
            await context.send_initial_metadata(tuple(initial or ()))
            async for response in responses:
                yield bytes(response)
        except grpc.aio.AioRpcError as error:
            await _fail(context, error)
        finally:
            responses.cancel()

    return forward


def _stream_stream(channel: grpc.aio.Channel, path: str) -> Callable[..., Any]:
    call = channel.stream_stream(path, request_serializer=None, response_deserializer=None)

    async def forward(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        responses = call(requests, timeout=_timeout(context), metadata=_metadata(context))
        try:
            async for response in responses:
                yield bytes(response)
        except grpc.aio.AioRpcError as error:
            await _fail(context, error)
        finally:
            responses.cancel()

    return forward


def method_handler(
    channel: grpc.aio.Channel, service: ServiceDescriptor, method: MethodDescriptor
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler that forwards ``method`` of ``service`` to ``channel`` as it is."""
    path = f"/{service.full_name}/{method.name}"
    if method.client_streaming and method.server_streaming:
        return grpc.stream_stream_rpc_method_handler(_stream_stream(channel, path))
    if method.client_streaming:
        return grpc.stream_unary_rpc_method_handler(_stream_unary(channel, path))
    if method.server_streaming:
        return grpc.unary_stream_rpc_method_handler(_unary_stream(channel, path))
    return grpc.unary_unary_rpc_method_handler(_unary_unary(channel, path))


def service_handler(
    channel: grpc.aio.Channel,
    service: ServiceDescriptor,
    *,
    only: Iterable[str] | None = None,
    wrap: Callable[[str, grpc.RpcMethodHandler[Any, Any]], grpc.RpcMethodHandler[Any, Any]]
    | None = None,
) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    """Forwarding handlers for ``service``'s methods (those in ``only``, if given)."""
    wanted = None if only is None else set(only)
    handlers = {}
    for method in service.methods:
        if wanted is not None and method.name not in wanted:
            continue
        handler = method_handler(channel, service, method)
        handlers[method.name] = handler if wrap is None else wrap(method.name, handler)
    return handlers
