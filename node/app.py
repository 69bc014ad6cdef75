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
import json
import os
import signal
import sys

import structlog

from rumor.node.config import Config
from rumor.node.replication import Durability, Replica
from rumor.node.server.clock import WallClock
from rumor.node.server.group_commit import GroupCommit
from rumor.node.server.grpc_server import GrpcServer
from rumor.node.server.kv_service import KVService
from rumor.node.server.operations import Operations
from rumor.node.server.sweeper import Sweeper
from rumor.node.storage import RocksStore

log = structlog.get_logger(__name__)

EXIT_SYNC_FAILED = 70


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
            replica = Replica(
                store,
                new_node_id=new_node_id(),
                wall_ms=self.clock.wall_ms(),
                durability=Durability(config.durability),
            )
            commit = GroupCommit(
                replica, on_failure=self._sync_failed, in_thread=config.wal_sync == "thread"
            )
            operations = Operations(
                replica, commit, self.clock, min_expiration_ttl=config.min_expiration_ttl
            )
            server = GrpcServer(KVService(operations))
            listen = server.bind(config.listen)
            await server.start()
            await server.set_serving(True)
            structlog.contextvars.bind_contextvars(node=config.name or f"{replica.node_id:016x}")
            sweeper = Sweeper(replica, operations, self.clock, config.sweep_interval_ms)
            tasks = [asyncio.create_task(sweeper.run(), name="sweeper")]
            self._install_signal_handlers()
            ready = {
                "event": "node.ready",
                "listen": listen,
                "http": None,
                "node_id": f"{replica.node_id:016x}",
            }
            log.info(
                "node.ready",
                listen=listen,
                data_dir=config.data_dir,
                durability=config.durability,
                records=replica.records_held,
            )
            print(json.dumps(ready), flush=True)

            await self.stopping.wait()
            log.info("node.stopping")
            await server.stop(config.shutdown_grace_ms / 1000)
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

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)


def run(config: Config) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit status."""
    return asyncio.run(Node(config).run())


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run the node with `rumor node`")
