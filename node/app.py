"""The node's lifecycle in three phases: build, start, stop.

- Build: bind the gRPC listener, open the replica and the engine on the
  store (reading only marks, never keys) with the one ``build()`` the
  simulator calls too, and wire the driver, the services and the console
  feeds. Nothing serves yet.
- Start: the HTTP listener, the gRPC server and its health, the replication
  loop; then one JSON line on stdout:
  ``{"event": "node.ready", "listen": ..., "http": ..., "node_id": ...}``.
- Stop (SIGTERM or SIGINT): each part's teardown was registered on one
  ``AsyncExitStack`` as the part was made, so the stop undoes the setup in
  reverse: health turns NOT_SERVING, the node tells its peers it left,
  in-flight RPCs get the grace period, the HTTP listener, the console feeds,
  the driver and the snapshot server stop, the WAL is synced and the store
  closed. A shutdown step slower than a second is logged by name.

A failed WAL sync stops the node with exit status 70. A full disk does not
stop it (``disk_space``): it serves reads, refuses writes until space
returns, and stops cleanly on SIGTERM; a store that cannot even open for lack
of space exits with status 74. A data directory restored from a backup
(``rumor admin restore``) starts a new cluster: at its first start it takes a
new id and forgets the old members, or, given ``--seeds``, is refused with
exit status 78 and left as it was.

The parts the build and start phases assemble have modules of their own:
``services`` (the wiring and the services over it), ``listeners`` (the gRPC
bind, the HTTP gateway), ``security_reload`` (secrets read again on SIGHUP or
a change); a worker process (``--workers``) runs ``worker_process``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import structlog

from rumor.node import data_dir as data_dir_steps
from rumor.node import shutdown
from rumor.node.config import Config
from rumor.node.core.disk_space import MIB, DiskSpaceRule
from rumor.node.core.errors import InsufficientStorage
from rumor.node.listeners import bind_grpc, serve_http
from rumor.node.replication import Durability, Replica
from rumor.node.replication.engine.build import Identity, build
from rumor.node.replication.engine.engine import Engine
from rumor.node.replication.engine.messages import NoticeKind, Now
from rumor.node.security_reload import reload_security_on_change
from rumor.node.server import release
from rumor.node.server.admission import ByteBudget, CallBudget
from rumor.node.server.backup.describe import backup_info, manifest_of
from rumor.node.server.backup.scheduled import ScheduledBackups
from rumor.node.server.driver import disk_space
from rumor.node.server.driver.clock import WallClock, new_boot_nonce, now_monotonic_ms
from rumor.node.server.driver.engine_driver import EngineDriver
from rumor.node.server.driver.faults import FaultRules
from rumor.node.server.driver.group_commit import GroupCommit
from rumor.node.server.driver.peer_transport import GrpcTransport
from rumor.node.server.grpc.server import GrpcServer
from rumor.node.server.snapshot import swap as snapshot_swap
from rumor.node.server.snapshot.client import download, grpc_stream
from rumor.node.server.watch import WatchHub
from rumor.node.server.workers.owner import OwnerListeners, keep_publishing, publish_state
from rumor.node.server.workers.supervisor import Supervisor
from rumor.node.services import Services, Wiring, build_services
from rumor.node.startup import (
    Security,
    event_loop_factory,
    new_node_id,
    throttled_loop_errors,
    tune_garbage_collector,
)
from rumor.node.storage import RocksStore

log = structlog.get_logger(__name__)

EXIT_SYNC_FAILED = 70
EXIT_REMOVED = 78  # EX_CONFIG: this id was removed; the data directory must be wiped
EXIT_DUPLICATE_ID = 76  # another live process holds this node's id (a copied data directory)
EXIT_DISK_FULL = 74  # EX_IOERR: no room even to open the store
EXIT_RESTORED_WITH_SEEDS = 78  # EX_CONFIG: a restored backup starts a new cluster, alone


class Node:
    """One running node; ``run`` serves until stopped and returns the exit status."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.clock = WallClock()
        self.stopping = asyncio.Event()
        self.exit_status = 0
        self._install = False  # a verified snapshot waits in incoming/: restart to install it
        self._retry = False  # the install failed: serve again, catching up by anti-entropy
        self._rejoin = False  # removed, and --rejoin-as-new: wipe, start again as a new node
        self._snapshots_allowed = not config.no_snapshot_bootstrap
        self._replica: Replica | None = None
        # After a restart for an install, the same ports as before (even if given as :0).
        self._listen = ""
        self._http = ""

    def stop(self, exit_status: int = 0) -> None:
        self.exit_status = self.exit_status or exit_status
        self.stopping.set()

    def _sync_failed(self, error: BaseException) -> None:
        self.stop(EXIT_SYNC_FAILED)

    async def run(self) -> int:
        data_dir = self.config.data_dir
        refused = data_dir_steps.prepare(data_dir, self.config.seed_list())
        if refused is not None:
            print(f"rumor node: {refused}", file=sys.stderr, flush=True)
            return EXIT_RESTORED_WITH_SEEDS
        while True:
            try:
                store = data_dir_steps.open_store(data_dir, self.config.disk_reserve_mb)
            except InsufficientStorage as error:
                print(f"rumor node: {error}", file=sys.stderr, flush=True)
                return EXIT_DISK_FULL
            try:
                data_dir_steps.adopt_copy(store)
                await self._serve(store)
                if self._install and self._replica is not None:
                    self._install = self._prepare_install(self._replica)
            finally:
                store.close()
            if self._install:
                snapshot_swap.begin(data_dir)
                log.info("node.bootstrapped_by_snapshot", message="restarting on the copy")
            elif self._rejoin:
                # The crash-safe swap, with nothing to move in: the removed id's data goes,
                # and the node starts empty, with a new id, and joins as new.
                snapshot_swap.wipe(data_dir)
                log.warning("node.rejoining_as_new", message="data directory wiped")
            elif not self._retry:
                break
            self._install = self._retry = self._rejoin = False
            self.stopping = asyncio.Event()
        log.info("node.stopped", exit_status=self.exit_status)
        return self.exit_status

    def _prepare_install(self, replica: Replica) -> bool:
        try:
            snapshot_swap.prepare(replica.state, self.config.data_dir)
        except Exception as error:
            log.error("snapshot.install_failed", error=repr(error))
            self._snapshots_allowed = False  # catch up by anti-entropy instead
            self._retry = True
            snapshot_swap.resume(self.config.data_dir)  # no marker: drops the copy
            return False
        return True

    async def _serve(self, store: RocksStore) -> None:
        """Build, start, serve until stopped, stop: each part's teardown is registered on
        one exit stack as the part is made, so the stop phase is setup in reverse."""
        async with contextlib.AsyncExitStack() as stack:
            wiring, services = self._build(store, stack)
            await self._start(wiring, services, stack)
            await self.stopping.wait()
            log.info("node.stopping")

    # ---- build: the object graph, bound but not yet serving ----------------------

    def _build(
        self, store: RocksStore, stack: contextlib.AsyncExitStack
    ) -> tuple[Wiring, Services]:
        config = self.config
        security = Security.load(config)
        owner = None
        if config.worker_count() > 0:
            owner = OwnerListeners(self._listen or config.listen, self._http or config.http)
            stack.callback(owner.close)
        server, listen = bind_grpc(self._listen or config.listen, security, owner)
        advertise = config.advertise or listen
        watches = WatchHub(
            self.clock.wall_ms,
            max_watchers=config.max_watchers,
            max_per_connection=config.max_watchers_per_connection,
            max_buffer=config.max_watch_buffer,
        )
        engine = build(
            store,
            Identity(
                new_node_id=new_node_id(),
                boot_nonce=new_boot_nonce(self.clock.wall_ms()),
                address=advertise,
                name=config.name,
                seeds=config.seed_list(),
                speaks=release.SPEAKS,
            ),
            config.protocol().replace(snapshot_bootstrap=self._snapshots_allowed),
            rng=random.Random(),
            now=Now(now_monotonic_ms(), self.clock.wall_ms()),
            durability=Durability(config.durability),
            listeners=(watches.publish,),
        )
        self._replica = engine.replica
        faults = FaultRules()
        # With workers, their reads must see every write acknowledged.
        acknowledging = None if owner is None else owner.acknowledging(store.latest_sequence_number)
        driver = self._build_driver(engine, store, faults, security, server, stack, acknowledging)
        wiring = Wiring(
            store=store,
            security=security,
            server=server,
            listen=listen,
            advertise=advertise,
            watches=watches,
            driver=driver,
            reads=ByteBudget(
                config.max_read_bytes_in_flight, config.read_admission_timeout_ms / 1000
            ),
            client_calls=CallBudget(config.max_client_calls),
            uploads=config.upload_budget(),
            owner=owner,
        )
        services = build_services(config, self.clock, wiring, faults, stack, drain=self.stop)
        return wiring, services

    def _build_driver(
        self,
        engine: Engine,
        store: RocksStore,
        faults: FaultRules,
        security: Security,
        server: GrpcServer,
        stack: contextlib.AsyncExitStack,
        acknowledging: Callable[[], None] | None,
    ) -> EngineDriver:
        """The engine's driver: group commit, peer transport, the disk guard, and the
        hooks it calls."""
        config, replica = self.config, engine.replica
        transport = GrpcTransport(
            faults,
            credentials=security.tls.channel_credentials() if security.tls else None,
            metadata=security.call_metadata,
            stats=engine.stats,
        )

        async def fetch_snapshot(address: str) -> object:
            stream = grpc_stream(transport.channel(address), security.call_metadata)
            return await download(stream, replica.node_id, config.data_dir)

        async def readiness(ready: bool) -> None:
            await server.set_serving(ready)

        disk = disk_space.DiskGuard(
            Path(config.data_dir), DiskSpaceRule(config.disk_reserve_mb * MIB), store
        )
        disk.start()

        driver = EngineDriver(
            engine,
            transport,
            # The group commit reports each finished sync to the driver, which tells the
            # engine (``advance``): the one door through which the replica becomes durable.
            lambda synced: GroupCommit(
                replica,
                synced=synced,
                on_failure=self._sync_failed,
                in_thread=config.wal_sync == "thread",
                acknowledging=acknowledging,
            ),
            self.clock,
            faults=faults,
            on_stop=self._refused,
            on_readiness=readiness,
            download_snapshot=fetch_snapshot,
            disk=disk,
        )
        stack.push_async_callback(self._flush, driver.commit)
        return driver

    def _publish_owner_state(self, wiring: Wiring) -> asyncio.Task[None]:
        """What the workers' reads need, published now and then kept up to date."""
        assert wiring.owner is not None
        driver, store, state = wiring.driver, wiring.store, wiring.owner.state
        engine = driver.engine

        def has_peers() -> bool:
            return bool(engine.membership.peers())

        publish_state(state, store.latest_sequence_number, driver, has_peers)
        return asyncio.create_task(
            keep_publishing(state, store.latest_sequence_number, driver, has_peers),
            name="owner-state",
        )

    # ---- start: listen, serve, run; stop is the exit stack unwinding -------------

    async def _start(
        self, wiring: Wiring, services: Services, stack: contextlib.AsyncExitStack
    ) -> None:
        config, server, driver = self.config, wiring.server, wiring.driver
        loop_lag = asyncio.create_task(services.loop_lag.run(), name="loop-lag")
        stack.push_async_callback(shutdown.cancelled, loop_lag)
        if driver.disk is not None:
            guard = driver.disk
            stack.push_async_callback(guard.stop)  # after the watch: a probe may be under way
            disk_watch = asyncio.create_task(guard.watch(), name="disk-space")
            stack.push_async_callback(shutdown.cancelled, disk_watch)
        http_runner, http_address = await serve_http(
            config, self._http or config.http, wiring, services
        )
        if http_runner is not None:
            shutdown.on_stop(stack, "http", http_runner.cleanup)
        kv_service = services.kv_service
        kv_service.grpc_address, kv_service.http_address = wiring.listen, http_address or ""
        if http_address and wiring.security.http_tls is not None:
            kv_service.http_address = f"https://{http_address}"  # Listeners tells clients
        self._listen, self._http = wiring.listen, http_address or ""
        await server.start()
        shutdown.on_stop(stack, "grpc", lambda: server.stop(config.shutdown_grace_ms / 1000))
        shutdown.on_stop(stack, "leave", driver.leave, when=self._leaves)
        shutdown.on_stop(stack, "health", lambda: server.set_serving(False))
        await server.set_serving(driver.ready)
        if wiring.owner is not None:
            publishing = self._publish_owner_state(wiring)
            stack.push_async_callback(shutdown.cancelled, publishing)
            workers = Supervisor(
                config.worker_count(),
                wiring.owner.socket_dir,
                wiring.listen,
                http_address or "",
                config.to_json(),
            )
            shutdown.on_stop(stack, "workers", workers.stop)
            await workers.start()
        replica = driver.replica
        structlog.contextvars.bind_contextvars(node=config.name or f"{replica.node_id:016x}")
        driver.start()
        if config.backup_dir:
            scheduled = ScheduledBackups(
                config.data_dir,
                config.backup_dir,
                config.backup_interval,
                config.backup_keep,
                wiring.store.snapshot_files,
                lambda: manifest_of(backup_info(driver), ()),
            )
            scheduled.start()
            shutdown.on_stop(stack, "scheduled backups", scheduled.stop)
        self._install_signal_handlers()
        reload_security_on_change(wiring, services, stack)
        self._announce_ready(wiring.listen, wiring.advertise, http_address, replica)

    def _leaves(self) -> bool:
        """A stopping node tells its peers it left, unless the cluster refused it or it
        stops only to install a snapshot (it comes straight back)."""
        refused = self.exit_status in (EXIT_REMOVED, EXIT_DUPLICATE_ID) or self._rejoin
        return not refused and not self._install

    async def _flush(self, commit: GroupCommit) -> None:
        """The last step of a stop: sync what is written (pointless once a sync failed)."""
        if self.exit_status == EXIT_SYNC_FAILED:
            return
        try:
            await commit.flush()
        except InsufficientStorage:
            # Not acknowledged, so nothing is lost: RocksDB recovers what its WAL holds.
            log.warning("node.stop_unsynced", reason="disk full")

    def _announce_ready(
        self, listen: str, advertise: str, http_address: str | None, replica: Replica
    ) -> None:
        config = self.config
        log.info(
            "node.ready",
            listen=listen,
            advertise=advertise,
            seeds=list(config.seed_list()),
            data_dir=config.data_dir,
            durability=config.durability,
            records=replica.records_held,
            fault_injection=config.enable_fault_injection,
            version=release.RELEASE,
            protocol=release.SPEAKS.version,
            oldest_protocol=release.SPEAKS.oldest,
        )
        tune_garbage_collector()
        ready = {
            "event": "node.ready",
            "listen": listen,
            "http": http_address,
            "node_id": f"{replica.node_id:016x}",
        }
        print(json.dumps(ready), flush=True)

    def _refused(self, message: str, kind: NoticeKind) -> None:
        """The cluster refuses this node: it was removed, or another process holds its id;
        or the engine stops it to install a downloaded snapshot."""
        if kind is NoticeKind.INSTALL_SNAPSHOT:
            self._install = True
            self.stop()
            return
        if kind is NoticeKind.REMOVED and self.config.rejoin_as_new:
            log.warning("node.removed_rejoining", message=message)
            self._rejoin = True
            self.stop()
            return
        print(f"rumor node: {message}", file=sys.stderr, flush=True)
        self.stop(EXIT_REMOVED if kind is NoticeKind.REMOVED else EXIT_DUPLICATE_ID)

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        loop.set_exception_handler(throttled_loop_errors())


def run(config: Config) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit status."""
    with asyncio.Runner(loop_factory=event_loop_factory(config.event_loop)) as runner:
        return runner.run(Node(config).run())


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run the node with `rumor node`")
