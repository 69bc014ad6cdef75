"""A unary call's steps (rumor.node.server.grpc.unary_call, call_steps) on a real grpc.aio
server: the authorizer sees each call's own invocation metadata (the one its method
lookup was given), concurrent calls included; a call whose authorizer ``permits_at_once``
skips ``permit``; a method marked ``own_trailers`` answers only the trailers it sets."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import grpc.aio

from rumor.node.server.grpc.call_steps import invocation_metadata
from rumor.node.server.grpc.rpc import own_trailers, service_handler
from rumor.node.server.release import METADATA
from rumor.v1 import admin_pb2 as pb

ADMIN = pb.DESCRIPTOR.services_by_name["Admin"]


class RecordingAccess:
    refusal = "refused"

    def __init__(self, at_once: bool) -> None:
        self.at_once = at_once
        self.seen: list[str] = []
        self.permits = 0

    def authenticate(self, method: str, metadata: Any) -> bool:
        self.seen.append(dict(metadata)["caller"])
        return True

    async def permit(self, method: str, request: Any) -> None:
        self.permits += 1

    def permits_at_once(self, method: str) -> bool:
        return self.at_once

    def ended(self, method: str, request: Any, response: Any, status: str) -> None:
        return None


class Servicer:
    def __init__(self) -> None:
        self.matched: list[bool] = []

    async def Status(self, request: pb.StatusRequest, context: Any) -> pb.StatusResponse:  # noqa: N802
        # What the call was handed is what the context says, whoever else is called.
        remembered = invocation_metadata(context)
        await asyncio.sleep(0.01)
        self.matched.append(tuple(remembered) == tuple(context.invocation_metadata()))
        return pb.StatusResponse(node_id=request.ByteSize())

    def __getattr__(self, name: str) -> Any:  # the Admin methods not called here
        async def unused(request: Any, context: Any) -> None:
            raise AssertionError(name)

        return unused

    @own_trailers
    async def Drain(self, request: pb.DrainRequest, context: Any) -> pb.DrainResponse:  # noqa: N802
        context.set_trailing_metadata((("x-own", "1"), *METADATA))
        return pb.DrainResponse()


async def _call(at_once: bool) -> tuple[RecordingAccess, Servicer, list[Any]]:
    access, servicer = RecordingAccess(at_once), Servicer()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((service_handler(ADMIN, servicer, authorize=access),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            status = channel.unary_unary(
                "/rumor.v1.Admin/Status",
                request_serializer=pb.StatusRequest.SerializeToString,
                response_deserializer=pb.StatusResponse.FromString,
            )
            drain = channel.unary_unary(
                "/rumor.v1.Admin/Drain",
                request_serializer=pb.DrainRequest.SerializeToString,
                response_deserializer=pb.DrainResponse.FromString,
            )
            await asyncio.gather(
                *(status(pb.StatusRequest(), metadata=(("caller", f"c{i}"),)) for i in range(20))
            )
            call = drain(pb.DrainRequest(), metadata=(("caller", "drain"),))
            await call
            trailers = list(await call.trailing_metadata())
    finally:
        await server.stop(None)
    return access, servicer, trailers


async def test_each_call_sees_its_own_metadata() -> None:
    access, servicer, _ = await _call(at_once=False)
    assert sorted(access.seen) == sorted([f"c{i}" for i in range(20)] + ["drain"])
    assert servicer.matched == [True] * 20
    assert access.permits == 21


async def test_permits_at_once_skips_permit() -> None:
    access, _, _ = await _call(at_once=True)
    assert access.permits == 0


async def test_a_method_with_its_own_trailers_is_answered_those() -> None:
    _, _, trailers = await _call(at_once=True)
    assert [(key, value) for key, value in trailers] == [("x-own", "1"), *METADATA]
