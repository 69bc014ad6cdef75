"""What a node serves, over what it binds: the build phase's two products.

``Wiring`` is made first — the store, the bound (not yet serving) gRPC server,
the engine's driver, the watch hub, the admission budgets and, with workers,
the owner's private listeners. ``build_services`` then puts the client, peer
and admin services on the bound server (with the snapshot and backup servers
they stream from), and makes the node's metrics, its loop-lag probe and what
the web console shows (with the other members' feeds). Each teardown is
registered on the node's exit stack as its part is made.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.descriptor import ServiceDescriptor

from rumor.node import shutdown
from rumor.node.config import Config
from rumor.node.server.access import titles_of
from rumor.node.server.admin_token import AdminToken
from rumor.node.server.admission import ByteBudget, CallBudget
from rumor.node.server.console.feed import ClusterView
from rumor.node.server.console.peers import PeerAccess, PeerFeeds
from rumor.node.server.driver.clock import WallClock
from rumor.node.server.driver.engine_driver import EngineDriver
from rumor.node.server.driver.faults import FaultRules
from rumor.node.server.grpc.admin_service import AdminService
from rumor.node.server.grpc.faults_service import FaultsService
from rumor.node.server.grpc.kv_service import KVService
from rumor.node.server.grpc.replication_service import ReplicationService
from rumor.node.server.grpc.server import (
    ADMIN_SERVICE,
    FAULTS_SERVICE,
    KV_SERVICE,
    REPLICATION_SERVICE,
    GrpcServer,
)
from rumor.node.server.loop_lag import LoopLag
from rumor.node.server.metrics import Conditions, Metrics
from rumor.node.server.operations import Operations
from rumor.node.server.snapshot.server import SnapshotServer
from rumor.node.server.upload_budget import UploadBudget
from rumor.node.server.watch import WatchHub
from rumor.node.server.workers import worker
from rumor.node.server.workers.owner import OwnerListeners
from rumor.node.startup import Security
from rumor.node.storage import RocksStore


@dataclass(frozen=True, slots=True)
class Wiring:
    """What the build phase made first: bound, holding the engine's driver, not serving."""

    store: RocksStore
    security: Security
    server: GrpcServer
    listen: str  # the bound gRPC address
    advertise: str  # what peers are told to call
    watches: WatchHub
    driver: EngineDriver
    reads: ByteBudget
    client_calls: CallBudget
    uploads: UploadBudget  # request bodies and PutStreams being received
    owner: OwnerListeners | None  # with workers: the private sockets and the ports held


@dataclass(frozen=True, slots=True)
class Services:
    """What serves clients and the console, over the wiring."""

    operations: Operations
    metrics: Metrics
    loop_lag: LoopLag
    kv_service: KVService
    cluster_view: ClusterView


def build_services(
    config: Config,
    clock: WallClock,
    wiring: Wiring,
    faults: FaultRules,
    stack: contextlib.AsyncExitStack,
    *,
    drain: Callable[[], None],
) -> Services:
    """The client and peer services on the bound gRPC server; the console's feeds.
    ``drain`` is what Admin's Drain calls: the node's stop."""
    driver, security = wiring.driver, wiring.security
    engine, replica = driver.engine, driver.replica
    snapshots = SnapshotServer(
        config.data_dir, wiring.store.snapshot_files, engine.snapshots.may_serve
    )
    shutdown.on_stop(stack, "snapshots", snapshots.close)
    # Backups are streamed by a server of their own: Admin's authorisation admits.
    backups = SnapshotServer(
        config.data_dir, wiring.store.snapshot_files, lambda _: True, prefix="backup-"
    )
    shutdown.on_stop(stack, "backups", backups.close)
    shutdown.on_stop(stack, "driver", driver.stop)
    operations = Operations(
        replica,
        driver.commit,
        clock,
        min_expiration_ttl=config.min_expiration_ttl,
        replication=driver,
    )
    metrics = _metrics(wiring)
    loop_lag = LoopLag(metrics.observe_loop_lag)
    kv_service = KVService(operations, wiring.watches, wiring.reads, wiring.uploads)
    admin_service = AdminService(
        driver,
        checkpoint=wiring.store.checkpoint,
        checkpoint_dir=config.checkpoint_dir or None,
        drain=drain,
        loop_lag=loop_lag,
        # Without a cluster secret, stopping the node takes the token in its data dir.
        admin_token=None if security.secret is not None else AdminToken.create(config.data_dir),
        backups=backups,
    )
    services: list[tuple[ServiceDescriptor, object]] = [
        (KV_SERVICE, kv_service),
        (REPLICATION_SERVICE, ReplicationService(driver, snapshots)),
        (ADMIN_SERVICE, admin_service),
    ]
    if config.enable_fault_injection:
        services.append((FAULTS_SERVICE, FaultsService(faults, clock, driver)))
    # Workers check clients' tokens on the operations they batch; their Batch
    # stream (on the owner's private socket) carries none.
    trusted, worker_key = frozenset[str](), ""
    if wiring.owner is not None:
        trusted, worker_key = (
            frozenset({"Batch"}),
            worker.new_worker_key(wiring.owner.socket_dir),
        )
    checks = security.grpc_checks(
        titles_of(operations.get_namespace), trusted=trusted, worker_key=worker_key
    )
    wiring.server.add_services(
        services,
        authorize=checks,
        observe=metrics.observe,
        budgets={KV_SERVICE.full_name: wiring.client_calls},
    )
    cluster_view = _cluster_view(wiring, loop_lag, stack)
    return Services(operations, metrics, loop_lag, kv_service, cluster_view)


def _metrics(wiring: Wiring) -> Metrics:
    """The node's series; with workers, theirs added at each scrape."""
    driver = wiring.driver
    engine = driver.engine
    metrics = Metrics(
        node_id=engine.replica.node_id,
        replica=engine.replica,
        stats=engine.stats,
        queues=engine.gossip.queues,
        vectors=lambda: engine.membership.vectors,
        conditions=lambda: Conditions(driver.ready, driver.fenced, driver.disk_full),
    )
    metrics.count_uploads(wiring.uploads)
    if wiring.owner is not None:
        socket_dir = wiring.owner.socket_dir
        metrics.worker_expositions = lambda: worker.worker_expositions(socket_dir)
    return metrics


def _cluster_view(
    wiring: Wiring, loop_lag: LoopLag, stack: contextlib.AsyncExitStack
) -> ClusterView:
    """What the web console shows, with the other members' feeds."""
    security = wiring.security
    peers = PeerFeeds(
        wiring.driver,
        PeerAccess(
            credentials=security.tls.channel_credentials() if security.tls else None,
            api_token=security.api_token,
            admin_metadata=security.call_metadata,
        ),
    )
    shutdown.on_stop(stack, "console peers", peers.stop)
    return ClusterView(wiring.driver, wiring.watches, loop_lag, peers)
