"""The Replication gRPC service: node-to-node calls, handed to the engine's driver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from rumor.node.core.errors import Unavailable
from rumor.node.server.driver.engine_driver import EngineDriver, Refused
from rumor.node.server.grpc.rpc import Context
from rumor.node.server.snapshot.server import SnapshotServer
from rumor.v1 import replication_pb2 as pb


class ReplicationService:
    def __init__(self, driver: EngineDriver, snapshots: SnapshotServer | None = None) -> None:
        self.driver = driver
        self.snapshots = snapshots

    async def _handle(self, method: str, request: Any) -> Any:
        try:
            return await self.driver.handle(method, request)
        except Refused as refused:
            raise Unavailable(str(refused)) from None

    async def Push(self, request: pb.PushRequest, context: Context) -> pb.PushResponse:
        response: pb.PushResponse = await self._handle("Push", request)
        return response

    async def Exchange(self, request: pb.ExchangeRequest, context: Context) -> pb.ExchangeResponse:
        response: pb.ExchangeResponse = await self._handle("Exchange", request)
        return response

    async def Audit(self, request: pb.AuditRequest, context: Context) -> pb.AuditResponse:
        response: pb.AuditResponse = await self._handle("Audit", request)
        return response

    async def Ping(self, request: pb.PingRequest, context: Context) -> pb.PingResponse:
        response: pb.PingResponse = await self._handle("Ping", request)
        return response

    async def Join(self, request: pb.JoinRequest, context: Context) -> pb.JoinResponse:
        response: pb.JoinResponse = await self._handle("Join", request)
        return response

    async def Admit(self, request: pb.AdmitRequest, context: Context) -> pb.AdmitResponse:
        response: pb.AdmitResponse = await self._handle("Admit", request)
        return response

    async def FetchSnapshot(
        self, request: pb.SnapshotRequest, context: Context
    ) -> AsyncIterator[pb.SnapshotChunk]:
        if self.snapshots is None:
            raise Unavailable("this node serves no snapshots")
        async for chunk in self.snapshots.stream(request):
            yield chunk
