"""The Replication gRPC service: node-to-node calls, handed to the Replicator."""

from __future__ import annotations

from typing import Any

from rumor.node.core.errors import Unavailable
from rumor.node.server.replicator import Refused, Replicator
from rumor.v1 import replication_pb2 as pb


class ReplicationService:
    def __init__(self, replicator: Replicator) -> None:
        self.replicator = replicator

    async def Push(self, request: pb.PushRequest, context: Any) -> pb.PushResponse:
        try:
            return await self.replicator.handle_push(request)
        except Refused as refused:
            raise Unavailable(str(refused)) from None

    async def Exchange(self, request: pb.ExchangeRequest, context: Any) -> pb.ExchangeResponse:
        try:
            return self.replicator.handle_exchange(request)
        except Refused as refused:
            raise Unavailable(str(refused)) from None

    async def Audit(self, request: pb.AuditRequest, context: Any) -> pb.AuditResponse:
        try:
            return self.replicator.handle_audit(request)
        except Refused as refused:
            raise Unavailable(str(refused)) from None

    async def Ping(self, request: pb.PingRequest, context: Any) -> pb.PingResponse:
        try:
            return await self.replicator.handle_ping(request)
        except Refused as refused:
            raise Unavailable(str(refused)) from None

    async def Join(self, request: pb.JoinRequest, context: Any) -> pb.JoinResponse:
        try:
            return await self.replicator.handle_join(request)
        except Refused as refused:
            raise Unavailable(str(refused)) from None
