"""The Replication gRPC service: node-to-node calls, handed to the engine's driver."""

from __future__ import annotations

from typing import Any

from rumor.node.core.errors import Unavailable
from rumor.node.server.replicator import Refused, Replicator
from rumor.v1 import replication_pb2 as pb


class ReplicationService:
    def __init__(self, replicator: Replicator) -> None:
        self.replicator = replicator

    async def _handle(self, method: str, request: Any) -> Any:
        try:
            return await self.replicator.handle(method, request)
        except Refused as refused:
            raise Unavailable(str(refused)) from None

    async def Push(self, request: pb.PushRequest, context: Any) -> pb.PushResponse:
        response: pb.PushResponse = await self._handle("Push", request)
        return response

    async def Exchange(self, request: pb.ExchangeRequest, context: Any) -> pb.ExchangeResponse:
        response: pb.ExchangeResponse = await self._handle("Exchange", request)
        return response

    async def Audit(self, request: pb.AuditRequest, context: Any) -> pb.AuditResponse:
        response: pb.AuditResponse = await self._handle("Audit", request)
        return response

    async def Ping(self, request: pb.PingRequest, context: Any) -> pb.PingResponse:
        response: pb.PingResponse = await self._handle("Ping", request)
        return response

    async def Join(self, request: pb.JoinRequest, context: Any) -> pb.JoinResponse:
        response: pb.JoinResponse = await self._handle("Join", request)
        return response
