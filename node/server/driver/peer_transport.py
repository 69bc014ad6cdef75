"""Peer calls over grpc.aio: channels, protobuf, fault rules, and why a call failed.

``GrpcTransport.call`` turns one ``Outbound`` into a unary call and its
answer into a ``Response``, or a ``Failed`` naming the cause as the engine
understands it (unreachable, deadline, unauthenticated, certificate,
refused, removed, duplicate id, malformed). Every failure is logged, at most
once per peer and cause per interval (``LogThrottle``), so a wrong cluster
secret or a TLS mismatch is visible and a dead peer does not flood the log.
A failed call to a seed closes its channel, so the next try resolves the
seed's DNS name again. The fault rules of ``--enable-fault-injection``
apply here, where messages leave the node.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import grpc.aio

from rumor.node.core.errors import MalformedPeerMessage
from rumor.node.replication.engine.components import ReplicationStats
from rumor.node.replication.engine.messages import Failed, FailureCause, Outbound, Response
from rumor.node.server.driver.codec import (
    METHOD_OF,
    RESPONSE_CLASS,
    reply_from_pb,
    request_to_pb,
)
from rumor.node.server.driver.faults import FaultRules
from rumor.node.server.log_throttle import LogThrottle

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 128 * 1024 * 1024),
    ("grpc.max_send_message_length", 128 * 1024 * 1024),
]
SERVICE = "/rumor.v1.Replication/"


class Transport(Protocol):
    async def call(self, outbound: Outbound) -> Response | Failed: ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Link:
    channel: grpc.aio.Channel
    methods: dict[str, Any] = field(default_factory=dict)


def failure_cause(error: grpc.aio.AioRpcError) -> FailureCause:
    """What a failed call means for the protocol, from its status and details."""
    code = error.code()
    details = (error.details() or "").lower()
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return FailureCause.UNAUTHENTICATED
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return FailureCause.DEADLINE
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        if "speaks replication protocol" in details:
            return FailureCause.INCOMPATIBLE
        if "already in use" in details:
            return FailureCause.DUPLICATE_ID
        if "removed" in details:
            return FailureCause.REMOVED
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return FailureCause.MALFORMED
    if code == grpc.StatusCode.UNAVAILABLE:
        if any(word in details for word in ("ssl", "tls", "certificate", "handshake")):
            return FailureCause.CERTIFICATE
        if any(word in details for word in ("connect", "dns", "resolve", "socket", "refused")):
            return FailureCause.UNREACHABLE
        return FailureCause.REFUSED
    return FailureCause.OTHER


class GrpcTransport:
    def __init__(
        self,
        faults: FaultRules,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        metadata: tuple[tuple[str, str], ...] = (),
        throttle: LogThrottle | None = None,
        stats: ReplicationStats | None = None,
    ) -> None:
        self.faults = faults
        self.stats = stats  # the engine's ReplicationStats: bytes are counted here
        self.credentials = credentials
        self.metadata = metadata
        self.throttle = throttle or LogThrottle()
        self._links: dict[str, _Link] = {}

    def _link(self, address: str) -> _Link:
        link = self._links.get(address)
        if link is None:
            channel = (
                grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
                if self.credentials is None
                else grpc.aio.secure_channel(address, self.credentials, options=CHANNEL_OPTIONS)
            )
            link = _Link(channel)
            self._links[address] = link
        return link

    def channel(self, address: str) -> grpc.aio.Channel:
        """The channel to ``address`` (for a snapshot's stream)."""
        return self._link(address).channel

    async def call(self, outbound: Outbound) -> Response | Failed:
        faults = self.faults
        if faults.blocks_outbound(outbound.to) or faults.drops():
            return Failed(outbound.message_id, FailureCause.REFUSED, "blocked by fault injection")
        delay = faults.delay_s()
        if delay:
            await asyncio.sleep(delay)
        method = METHOD_OF[type(outbound.body)]
        link = self._link(outbound.address)
        callable_ = link.methods.get(method)
        if callable_ is None:
            callable_ = link.channel.unary_unary(
                SERVICE + method,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=RESPONSE_CLASS[method].FromString,
            )
            link.methods[method] = callable_
        request = request_to_pb(outbound.envelope, outbound.body)
        try:
            response = await callable_(
                request, timeout=outbound.timeout_ms / 1000, metadata=self.metadata
            )
        except grpc.aio.AioRpcError as error:
            return await self._failed(outbound, method, error)
        stats = self.stats
        if stats is not None:
            if method == "Push":
                stats.push_bytes += request.ByteSize()
            elif method == "Exchange":
                size = response.ByteSize()
                stats.exchange_bytes += size
                stats.last_exchange_bytes = size
        try:
            envelope, body = reply_from_pb(method, response)
        except MalformedPeerMessage as error:
            return Failed(outbound.message_id, FailureCause.MALFORMED, str(error))
        return Response(outbound.message_id, envelope, body)

    async def _failed(self, outbound: Outbound, method: str, error: grpc.aio.AioRpcError) -> Failed:
        cause = failure_cause(error)
        detail = error.details() or ""
        self.throttle.warning(
            "replication.call_failed",
            (outbound.address, cause),
            peer=outbound.address,
            member=f"{outbound.to:016x}" if outbound.to else "seed",
            method=method,
            cause=cause.value,
            status=error.code().name,
            detail=detail[:200],
        )
        if outbound.to == 0:
            # A seed by address: drop the channel so the next try resolves its name again.
            link = self._links.pop(outbound.address, None)
            if link is not None:
                await link.channel.close(None)
        return Failed(outbound.message_id, cause, detail)

    async def close(self) -> None:
        for link in self._links.values():
            await link.channel.close(None)
        self._links.clear()
