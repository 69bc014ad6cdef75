"""The node's wiring and lifecycle: open, serve, stop cleanly.

Start-up opens the store (reading only marks, never keys), builds the replica
and the services, binds, and prints one JSON line on stdout:
``{"event": "node.ready", "listen": ..., "http": ..., "node_id": ...}``.
SIGTERM or SIGINT stops it: health turns NOT_SERVING, in-flight RPCs get the
grace period, background tasks stop, the WAL is synced and the store closed.
A failed WAL sync stops the node with exit status 70.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import structlog
from google.protobuf.descriptor import ServiceDescriptor

from rumor.node.config import Config
from rumor.node.core.clock_fence import ClockFence
from rumor.node.core.membership import Member, State
from rumor.node.replication import Durability, Replica
from rumor.node.replication.membership import Membership
from rumor.node.server.admin_service import AdminService
from rumor.node.server.auth import TokenChecker, load_tokens
from rumor.node.server.clock import WallClock
from rumor.node.server.faults import FaultRules
from rumor.node.server.faults_service import FaultsService
from rumor.node.server.group_commit import GroupCommit
from rumor.node.server.grpc_server import (
    ADMIN_SERVICE,
    FAULTS_SERVICE,
    KV_SERVICE,
    REPLICATION_SERVICE,
    BindError,
    GrpcServer,
)
from rumor.node.server.http_gateway import build_app, serve
from rumor.node.server.kv_service import KVService
from rumor.node.server.metrics import Metrics
from rumor.node.server.operations import Operations
from rumor.node.server.replication_service import ReplicationService
from rumor.node.server.replicator import ReplicationSettings, Replicator, new_boot_nonce
from rumor.node.server.security import SECRET_HEADER, SecretChecker, Tls, load_secret
from rumor.node.server.sweeper import Sweeper
from rumor.node.server.watch import WatchHub
from rumor.node.storage import RocksStore, layout
from rumor.node.storage.rocks import RESTORED_MARKER
from rumor.node.storage.store import META

log = structlog.get_logger(__name__)

EXIT_SYNC_FAILED = 70
EXIT_REMOVED = 78  # EX_CONFIG: this id was removed; the data directory must be wiped


def tune_garbage_collector() -> None:
    """Keep the objects the node holds from start-up out of the collector's walks.

    They live as long as the node, so ``gc.freeze`` moves them to a generation
    that is never collected. The collection thresholds stay the default:
    raising them for the whole process (100,000) saved about 15% of a bulk
    write's CPU, but also lets grpc.aio's per-call garbage pile up between
    collections; bulk writes pause the collector for their own loop instead
    (``Operations.bulk_put``).
    """
    gc.freeze()


def _loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def new_node_id() -> int:
    """A random, non-zero 64-bit node id (taken only on a first start)."""
    while True:
        node_id = int.from_bytes(os.urandom(8), "big")
        if node_id:
            return node_id


class Node:
    """One running node; ``run`` serves until stopped and returns the exit status."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.clock = WallClock()
        self.stopping = asyncio.Event()
        self.exit_status = 0

    def stop(self, exit_status: int = 0) -> None:
        self.exit_status = self.exit_status or exit_status
        self.stopping.set()

    def _sync_failed(self, error: BaseException) -> None:
        self.stop(EXIT_SYNC_FAILED)

    async def run(self) -> int:
        config = self.config
        store = RocksStore(config.data_dir)
        try:
            self._take_new_id_if_restored(store)
            replica = Replica(
                store,
                new_node_id=new_node_id(),
                wall_ms=self.clock.wall_ms(),
                durability=Durability(config.durability),
                max_clock_offset_ms=config.max_clock_offset_ms,
            )
            commit = GroupCommit(
                replica, on_failure=self._sync_failed, in_thread=config.wal_sync == "thread"
            )
            fence = ClockFence(
                config.max_clock_offset_ms, enforce=config.clock_offset_policy == "fence"
            )
            faults = FaultRules()
            me = Member(
                replica.node_id,
                "",
                0,
                State.ALIVE,
                new_boot_nonce(self.clock.wall_ms()),
                config.name,
            )
            membership = Membership(
                store,
                me,
                suspicion_timeout_ms=config.suspicion_timeout_ms,
                member_timeout_ms=config.member_timeout_ms,
            )
            placeholder = ReplicationSettings(advertise="")
            replicator = Replicator(
                replica,
                membership,
                commit,
                self.clock,
                placeholder,
                fence=fence,
                faults=faults,
                on_removed=self._removed,
            )
            watches = WatchHub(self.clock.wall_ms)
            replica.listeners.append(watches.publish)
            operations = Operations(
                replica,
                commit,
                self.clock,
                min_expiration_ttl=config.min_expiration_ttl,
                replication=replicator,
            )
            kv_service = KVService(operations, watches)
            services: list[tuple[ServiceDescriptor, object]] = [
                (KV_SERVICE, kv_service),
                (REPLICATION_SERVICE, ReplicationService(replicator)),
                (
                    ADMIN_SERVICE,
                    AdminService(replicator, checkpoint=store.checkpoint, drain=self.stop),
                ),
            ]
            if config.enable_fault_injection:
                services.append((FAULTS_SERVICE, FaultsService(faults, self.clock, replicator)))
            tokens = TokenChecker(
                load_tokens(config.api_token, config.api_token_file or None, None)
            )
            if not tokens.enabled:
                log.warning("auth.open", reason="no --api-token configured: the APIs are open")
            metrics = Metrics(
                node_id=replica.node_id,
                replica=replica,
                stats=replicator.stats,
                queues=replicator.queues,
                vectors=lambda: membership.vectors,
            )
            tls = Tls.load(config.tls_cert, config.tls_key, config.tls_ca)
            secret = load_secret(config.cluster_secret_file, os.environ.get("RUMOR_CLUSTER_SECRET"))
            checks: dict[str, Any] = {}
            if tokens.enabled:
                checks[KV_SERVICE.full_name] = tokens.grpc_allows
            if secret is not None:
                secret_checker = SecretChecker(secret)
                for descriptor in (REPLICATION_SERVICE, ADMIN_SERVICE, FAULTS_SERVICE):
                    checks[descriptor.full_name] = secret_checker.allows
                replicator.call_metadata = ((SECRET_HEADER, secret),)
            else:
                log.warning("cluster.open", reason="no cluster secret: any host may replicate")
            if tls is not None:
                replicator.channel_credentials = tls.channel_credentials()
            server = GrpcServer(services, authorize=checks or None, observe=metrics.observe)
            listen = server.bind(
                config.listen, tls.server_credentials() if tls is not None else None
            )
            if tls is None and not _loopback(listen):
                log.warning(
                    "listener.exposed",
                    listen=listen,
                    reason="not on loopback and without TLS: traffic is readable on the network",
                )
            advertise = config.advertise or listen
            replicator.configure(self._replication_settings(advertise))
            replicator.ready = not config.seed_list() and not membership.peers()
            membership.announce(advertise)

            async def serving() -> None:
                await server.set_serving(True)

            replicator.on_ready = serving
            http_runner = None
            http_address = None
            if config.http:
                gateway = build_app(
                    operations,
                    authorize=tokens.http_status if tokens.enabled else None,
                    ready=lambda: replicator.ready,
                    metrics_text=metrics.render,
                    observe=metrics.observe,
                )
                host, _, port = config.http.rpartition(":")
                try:
                    http_runner, http_address = await serve(gateway, host, int(port))
                except OSError as exc:
                    raise BindError(f"cannot listen on {config.http}: {exc.strerror}") from exc
            kv_service.grpc_address, kv_service.http_address = listen, http_address or ""
            await server.start()
            await server.set_serving(replicator.ready)
            structlog.contextvars.bind_contextvars(node=config.name or f"{replica.node_id:016x}")
            sweeper = Sweeper(replica, operations, self.clock, config.sweep_interval_ms)
            tasks = [asyncio.create_task(sweeper.run(), name="sweeper")]
            replicator.start()
            self._install_signal_handlers()
            ready = {
                "event": "node.ready",
                "listen": listen,
                "http": http_address,
                "node_id": f"{replica.node_id:016x}",
            }
            log.info(
                "node.ready",
                listen=listen,
                advertise=advertise,
                seeds=list(config.seed_list()),
                data_dir=config.data_dir,
                durability=config.durability,
                records=replica.records_held,
                fault_injection=config.enable_fault_injection,
            )
            tune_garbage_collector()
            print(json.dumps(ready), flush=True)

            await self.stopping.wait()
            log.info("node.stopping")
            await server.set_serving(False)
            if self.exit_status != EXIT_REMOVED:
                await replicator.leave()
            await server.stop(config.shutdown_grace_ms / 1000)
            if http_runner is not None:
                await http_runner.cleanup()
            await replicator.stop()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.exit_status != EXIT_SYNC_FAILED:
                await commit.flush()
        finally:
            store.close()
        log.info("node.stopped", exit_status=self.exit_status)
        return self.exit_status

    def _take_new_id_if_restored(self, store: RocksStore) -> None:
        """A node started on a checkpoint (or a copy) must not claim the original's id."""
        marker = store.path / RESTORED_MARKER
        if not marker.exists():
            return
        old = store.get(META, layout.META_NODE_ID)
        _, hlc = layout.unpack_marks(store.get(META, layout.META_MARKS))
        batch = store.batch()
        batch.put(META, layout.META_NODE_ID, layout.pack_u64(new_node_id()))
        batch.put(META, layout.META_MARKS, layout.pack_marks(0, hlc))  # a new origin: seq 0
        batch.delete(META, layout.META_RESERVED)
        batch.delete(META, layout.META_INCARNATION)
        store.write(batch)
        store.sync_wal()
        marker.unlink()
        log.info(
            "node.restored",
            previous_id=None if old is None else f"{layout.unpack_u64(old):016x}",
        )

    def _replication_settings(self, advertise: str) -> ReplicationSettings:
        config = self.config
        return ReplicationSettings(
            advertise=advertise,
            seeds=config.seed_list(),
            name=config.name,
            gossip_interval_ms=config.gossip_interval_ms,
            fanout=config.fanout,
            anti_entropy_interval_ms=config.anti_entropy_interval_ms,
            probe_interval_ms=config.probe_interval_ms,
            probe_timeout_ms=config.probe_timeout_ms,
            indirect_probes=config.indirect_probes,
            audit_interval_ms=config.audit_interval_ms,
            gc_grace_ms=config.gc_grace_ms,
            min_replicas_timeout_ms=config.min_replicas_timeout_ms,
        )

    def _removed(self, message: str) -> None:
        log.error("node.removed", message=message)
        self.stop(EXIT_REMOVED)

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What makes the node's event loop (``--event-loop``); None: asyncio's own.

    uvloop is optional: ``auto`` takes it only when it imports, ``uvloop``
    insists on it (a ValueError, reported as a start-up error, when missing).
    """
    if choice == "asyncio":
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        if choice == "uvloop":
            raise ValueError("--event-loop uvloop: the uvloop package is not installed") from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(config: Config) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit status."""
    with asyncio.Runner(loop_factory=event_loop_factory(config.event_loop)) as runner:
        return runner.run(Node(config).run())


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run the node with `rumor node`")
