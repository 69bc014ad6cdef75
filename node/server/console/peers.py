"""What the web console learns from the other members: their Watch and their audit digest.

A browser cannot open a stream to another node (cross-origin, refused by
``http.guard``), so the node serving the console does it, once for all its
open consoles: while at least one console is subscribed, ``PeerFeeds`` holds

- one Watch stream (``KV.Watch`` with ``all_namespaces``) to each other alive
  member, on the gRPC address the member advertises (it serves KV too), with
  this node's API token when it has one. Each change a member applies is
  relayed to every subscribed console as an ``applied`` record: the member,
  the namespace, the key, the version (HLC and origin), the seq and the
  member's wall clock when it applied it. A stream counts against the
  member's Watch limits like any other (one per serving node); it is opened
  again a second after it fails, and closed when the member is no longer
  alive or the last console closes.
- a poll of each alive member's ``Admin.Status`` (with the cluster secret)
  every ``AUDIT_INTERVAL_S``, for its audit digest: the cluster view says
  whether every alive member holds the same data (``audit.agreement``).

A console that reads too slowly loses relayed records (its queue is bounded)
and is told how many, as for its own watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
import structlog

from rumor.node.core import hlc
from rumor.node.core.membership import Member, State
from rumor.node.server.driver.engine_driver import EngineDriver
from rumor.node.server.log_throttle import LogThrottle
from rumor.v1 import admin_pb2, kv_pb2

log = structlog.get_logger(__name__)

RECONCILE_S = 0.5  # how often the set of streams follows the member table
RETRY_S = 1.0  # a failed stream is opened again after this
AUDIT_INTERVAL_S = 1.0  # each alive member's Admin.Status, while a console is open
STATUS_TIMEOUT_S = 2.0
WATCH_BUFFER = 1024  # asked of each member for its stream
CONSOLE_QUEUE = 4096  # relayed records held for one console


def _hex(node_id: int) -> str:
    return f"{node_id:016x}"


@dataclass(frozen=True, slots=True)
class PeerAccess:
    """How this node calls its peers: TLS, its API token (KV) and the cluster secret (Admin)."""

    credentials: grpc.ChannelCredentials | None = None
    api_token: str | None = None
    admin_metadata: tuple[tuple[str, str], ...] = ()

    def channel(self, address: str) -> grpc.aio.Channel:
        """A new channel to ``address`` (the caller closes it)."""
        if self.credentials is None:
            return grpc.aio.insecure_channel(address)
        return grpc.aio.secure_channel(address, self.credentials)

    @property
    def kv_metadata(self) -> tuple[tuple[str, str], ...]:
        return () if self.api_token is None else (("authorization", f"Bearer {self.api_token}"),)


@dataclass(slots=True)
class Subscription:
    """One console's share of the relay: a bounded queue and what it lost."""

    queue: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(CONSOLE_QUEUE)
    )
    dropped: int = 0


@dataclass(slots=True)
class _Peer:
    """One other alive member: one channel, its Watch stream's task."""

    address: str
    channel: grpc.aio.Channel
    task: asyncio.Task[None] | None = None
    open: bool = False  # the member has registered the watcher
    status: Any = None  # its Admin.Status, a unary method of ``channel``

    def __post_init__(self) -> None:
        self.status = self.channel.unary_unary(
            "/rumor.v1.Admin/Status",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=admin_pb2.StatusResponse.FromString,
        )


def applied_record(member: int, event: kv_pb2.WatchEvent) -> dict[str, Any]:
    """The ``applied`` record a console receives for one change ``member`` applied."""
    return {
        "member": _hex(member),
        "namespace": event.namespace_id,
        "key": event.key.decode("utf-8", "replace"),
        "origin": _hex(event.version.origin),
        "seq": event.seq,
        "hlc": event.version.hlc,
        "written_ms": hlc.wall_ms_of(event.version.hlc),
        "applied_ms": event.applied_wall_ms,
        "deleted": event.tombstone,
    }


class PeerFeeds:
    def __init__(self, driver: EngineDriver, access: PeerAccess) -> None:
        self.driver = driver
        self.access = access
        self.subscriptions: list[Subscription] = []
        self.peers: dict[int, _Peer] = {}
        self.digests: dict[int, tuple[int, float]] = {}  # member id -> (digest, monotonic time)
        self._supervisor: asyncio.Task[None] | None = None
        self._throttle = LogThrottle(log)

    # ---- consoles -------------------------------------------------------

    def subscribe(self) -> Subscription:
        subscription = Subscription()
        self.subscriptions.append(subscription)
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise(), name="console-peers")
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        self.subscriptions.remove(subscription)
        if not self.subscriptions:
            await self.stop()

    async def stop(self) -> None:
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        await self._forget(list(self.peers))
        self.digests.clear()

    def _relay(self, record: dict[str, Any]) -> None:
        for subscription in self.subscriptions:
            try:
                subscription.queue.put_nowait(record)
            except asyncio.QueueFull:
                subscription.dropped += 1

    # ---- what the cluster view shows ---------------------------------------

    def watching(self) -> list[str]:
        """The members whose Watch stream is open now."""
        return sorted(_hex(member) for member, peer in self.peers.items() if peer.open)

    def digest_of(self, member: int) -> int | None:
        known = self.digests.get(member)
        if known is None or time.monotonic() - known[1] > 3 * AUDIT_INTERVAL_S:
            return None  # never polled, or too long ago to be compared
        return known[0]

    # ---- the streams and the polls ---------------------------------------

    def _others_alive(self) -> dict[int, Member]:
        own = self.driver.replica.node_id
        return {
            m.id: m
            for m in self.driver.membership.all()
            if m.id != own and m.state is State.ALIVE and m.address
        }

    async def _supervise(self) -> None:
        next_poll = 0.0
        while True:
            try:
                next_poll = await self._reconcile(next_poll)
            except Exception as error:  # the console's relay must never stop for good
                cause = type(error).__name__
                self._throttle.error("console.peers_failed", cause, error=repr(error))
            await asyncio.sleep(RECONCILE_S)

    async def _reconcile(self, next_poll: float) -> float:
        """Follow the member table once; poll the digests when ``next_poll`` has passed."""
        alive = self._others_alive()
        await self._forget(
            member
            for member, peer in self.peers.items()
            if member not in alive or alive[member].address != peer.address
        )
        for member, info in alive.items():
            if member not in self.peers:
                peer = _Peer(info.address, self.access.channel(info.address))
                self.peers[member] = peer
                peer.task = asyncio.create_task(
                    self._follow(member, peer), name=f"console-watch-{member:016x}"
                )
        if time.monotonic() >= next_poll:
            next_poll = time.monotonic() + AUDIT_INTERVAL_S
            await asyncio.gather(*(self._poll(m, p) for m, p in list(self.peers.items())))
        return next_poll

    async def _forget(self, members: Iterable[int]) -> None:
        for member in list(members):
            peer = self.peers.pop(member)
            self.digests.pop(member, None)
            if peer.task is not None:
                peer.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await peer.task
            await peer.channel.close(None)

    async def _follow(self, member: int, peer: _Peer) -> None:
        """Relay the Watch stream of ``member`` until cancelled, opening it again on failure."""
        request = kv_pb2.WatchRequest(all_namespaces=True, buffer=WATCH_BUFFER)
        watch = peer.channel.unary_stream(
            "/rumor.v1.KV/Watch",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=kv_pb2.WatchEvent.FromString,
        )
        while True:
            try:
                call = watch(request, metadata=self.access.kv_metadata)
                await call.initial_metadata()
                peer.open = True
                async for event in call:
                    if event.fell_behind:
                        for subscription in self.subscriptions:
                            subscription.dropped += event.dropped
                        continue
                    self._relay(applied_record(member, event))
            except grpc.aio.AioRpcError as error:
                self._throttle.warning(
                    "console.watch_failed",
                    (peer.address, error.code()),
                    peer=peer.address,
                    status=error.code().name,
                    detail=(error.details() or "")[:200],
                )
            finally:
                peer.open = False
            await asyncio.sleep(RETRY_S)

    async def _poll(self, member: int, peer: _Peer) -> None:
        try:
            status = await peer.status(
                admin_pb2.StatusRequest(),
                timeout=STATUS_TIMEOUT_S,
                metadata=self.access.admin_metadata,
            )
        except grpc.aio.AioRpcError as error:
            self._throttle.warning(
                "console.status_failed",
                (peer.address, error.code()),
                peer=peer.address,
                status=error.code().name,
            )
            return
        if member in self.peers:
            self.digests[member] = (status.audit_digest, time.monotonic())
