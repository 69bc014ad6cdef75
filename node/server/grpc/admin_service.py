"""The Admin gRPC service: status for `rumor cluster status`, checkpoints, backups,
drain, removal.

A backup (``Backup``) is streamed to the caller, never written on the node's
host by this call: a checkpoint served by the snapshot room's server (files
listed with their CRC-32, chunks checksummed, read off the loop), preceded by
what it is of (``BackupInfo``: the watermarks are read before the checkpoint
is made, so the copy holds at least them). Files the caller names as held are
listed but not sent.

A checkpoint is written only under the node's ``--checkpoint-dir``: the
directory asked for is taken relative to it (an absolute path must lie inside
it), ``..`` is refused outright and the resolved path (symlinks followed) must
stay inside, so a caller cannot make the node write a copy of its database
anywhere else. Without ``--checkpoint-dir`` checkpoints are refused.

On a node without a cluster secret, ``Drain`` and ``RemoveNode`` need the
node's admin token (``rumor.node.server.admin_token``) or an API token with
the admin scope on every namespace; with a secret, the secret (checked for the
whole service) is enough.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path, PurePath

from rumor.node.core import audit
from rumor.node.core.errors import InvalidRequest, NamespaceNotFound, PermissionDenied
from rumor.node.core.namespaces import id_bytes
from rumor.node.core.record import RecordHeader
from rumor.node.server import security
from rumor.node.server.admin_token import ADMIN_TOKEN_CALLER, REFUSED, AdminToken
from rumor.node.server.audit import OPEN_CALLER
from rumor.node.server.auth import Metadata
from rumor.node.server.backup.describe import backup_info
from rumor.node.server.driver.codec import member_to_pb
from rumor.node.server.driver.engine_driver import EngineDriver
from rumor.node.server.grpc.rpc import CLIENT_PEER_HEADER, Context
from rumor.node.server.loop_lag import LoopLag
from rumor.node.server.snapshot.server import SnapshotServer
from rumor.node.storage import layout
from rumor.node.storage.store import KV, prefix_end
from rumor.v1 import admin_pb2 as pb
from rumor.v1 import replication_pb2


def checkpoint_target(root: str | None, asked: str) -> Path:
    """Where a checkpoint asked for as ``asked`` goes; InvalidRequest if not under ``root``."""
    if root is None:
        raise InvalidRequest(
            "Checkpoints are off on this node: start it with --checkpoint-dir DIR to allow"
            " them under DIR."
        )
    if not asked:
        raise InvalidRequest("Give the directory to write the checkpoint to.")
    if "\x00" in asked:
        raise InvalidRequest("The checkpoint directory name cannot hold a NUL character.")
    if ".." in PurePath(asked).parts:
        raise InvalidRequest(f"The checkpoint directory {asked!r} cannot contain '..'.")
    base = Path(root).resolve()
    target = (base / asked).resolve()
    if target == base or not target.is_relative_to(base):
        raise InvalidRequest(
            f"The checkpoint directory {asked!r} is outside this node's checkpoint directory"
            f" {root}; give a name inside it."
        )
    return target


def _client_peer(peer: str, metadata: Metadata) -> str:
    """Who called: a call a worker forwarded over its Unix socket names its client."""
    if peer.startswith("unix:"):
        for key, value in metadata or ():
            if key == CLIENT_PEER_HEADER:
                return value if isinstance(value, str) else value.decode("ascii", "replace")
    return peer


class AdminService:
    def __init__(
        self,
        driver: EngineDriver,
        *,
        checkpoint: Callable[[str], object] | None = None,
        checkpoint_dir: str | None = None,
        drain: Callable[[], None] | None = None,
        loop_lag: LoopLag | None = None,
        admin_token: AdminToken | None = None,
        backups: SnapshotServer | None = None,
    ) -> None:
        self.driver = driver
        self._admin_token = admin_token  # None: the cluster secret guards every call
        self._backups = backups
        self._checkpoint = checkpoint
        self._checkpoint_dir = checkpoint_dir
        self._drain = drain
        self._loop_lag = loop_lag

    async def Checkpoint(
        self, request: pb.CheckpointRequest, context: Context
    ) -> pb.CheckpointResponse:
        if self._checkpoint is None:
            raise InvalidRequest("This node's store cannot take checkpoints.")
        target = checkpoint_target(self._checkpoint_dir, request.directory)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # A checkpoint flushes memtables and links files: seconds on a large store,
            # off the loop (rocksdict releases the GIL while RocksDB works).
            await asyncio.to_thread(self._checkpoint, str(target))
        except FileExistsError as exc:
            raise InvalidRequest(f"{exc}: a checkpoint goes to a new directory.") from None
        except OSError as exc:
            raise InvalidRequest(f"cannot write a checkpoint to {target}: {exc}") from None
        return pb.CheckpointResponse(directory=str(target))

    def _may_stop(self, context: Context) -> None:
        """Drain and RemoveNode on a node without a cluster secret: the admin token, from
        this host (or an admin API token, which the service's check already named)."""
        token = self._admin_token
        if token is None or security.admin_caller() not in ("", OPEN_CALLER):
            return
        metadata = tuple(context.invocation_metadata() or ())
        if not token.allows(metadata, _client_peer(context.peer(), metadata)):
            raise PermissionDenied(REFUSED)
        security.set_admin_caller(ADMIN_TOKEN_CALLER)

    async def Backup(
        self, request: pb.BackupRequest, context: Context
    ) -> AsyncIterator[pb.BackupChunk]:
        if self._backups is None:
            raise InvalidRequest("This node's store cannot make backups.")
        info = backup_info(self.driver)
        held = frozenset((f.name, f.size, f.crc32) for f in request.have)
        first = True
        async for chunk in self._backups.stream(replication_pb2.SnapshotRequest(), held):
            yield pb.BackupChunk(info=info, chunk=chunk) if first else pb.BackupChunk(chunk=chunk)
            first = False

    async def Drain(self, request: pb.DrainRequest, context: Context) -> pb.DrainResponse:
        self._may_stop(context)
        if self._drain is not None:
            self._drain()
        return pb.DrainResponse()

    async def Status(self, request: pb.StatusRequest, context: Context) -> pb.StatusResponse:
        r = self.driver
        replica = r.replica
        members = [
            pb.MemberStatus(
                member=member_to_pb(member),
                watermarks=(
                    replica.own_watermarks()
                    if member.id == replica.node_id
                    else r.membership.vectors.get(member.id, {})
                ),
                clock_offset_ms=r.clock_offset_ms(member.id),
                writes_refused=(
                    r.writes_refused if member.id == replica.node_id else r.refusing(member.id)
                ),
            )
            for member in r.membership.all()
        ]
        return pb.StatusResponse(
            node_id=replica.node_id,
            name=r.name,
            address=r.advertise,
            hlc=replica.clock.last,
            watermarks=replica.own_watermarks(),
            members=members,
            audit_buckets=audit.pack_buckets(replica.audit_buckets),
            audit_digest=audit.digest(replica.audit_buckets),
            records_held=max(replica.records_held, 0),
            tombstones_held=max(replica.tombstones_held, 0),
            ready=r.ready,
            fenced=r.fenced,
            audit_repairs_total=replica.audit_repairs_total,
            deferred_records=replica.deferred_held,
            push_queue_drops=r.queues.dropped,
            pushes_sent=r.stats.pushes_sent,
            push_bytes_received=r.stats.push_bytes_received,
            exchanges=r.stats.exchanges,
            exchange_bytes_received=r.stats.exchange_bytes,
            records_applied_remote=r.stats.records_applied_remote,
            max_event_loop_lag_ms=(
                0.0 if self._loop_lag is None else self._loop_lag.max_seconds * 1000
            ),
            admin_token_file="" if self._admin_token is None else str(self._admin_token.path),
            not_ready=r.not_ready,
            writes_refused=r.writes_refused,
            disk_full=r.disk_full,
        )

    async def RemoveNode(
        self, request: pb.RemoveNodeRequest, context: Context
    ) -> pb.RemoveNodeResponse:
        self._may_stop(context)
        if request.node_id == self.driver.replica.node_id:
            raise InvalidRequest("A node cannot remove itself; ask another member.")
        if request.node_id == 0:
            raise InvalidRequest("Give the id of the node to remove.")
        await self.driver.remove_member(request.node_id)
        return pb.RemoveNodeResponse()

    async def Records(
        self, request: pb.RecordsRequest, context: Context
    ) -> AsyncIterator[pb.RecordInfo]:
        namespace = id_bytes(request.namespace_id)
        if namespace is None:
            raise NamespaceNotFound()
        replica = self.driver.replica
        start = layout.record_key(namespace, b"")
        batch: list[pb.RecordInfo] = []
        for stored_key, raw in replica.store.scan(KV, start, prefix_end(start)):
            header = RecordHeader.decode(raw)
            batch.append(
                pb.RecordInfo(
                    key=stored_key[layout.NAMESPACE_BYTES :],
                    hlc=header.hlc,
                    origin=header.origin,
                    seq=header.seq,
                    tombstone=header.tombstone,
                    expiration=header.expiration,
                )
            )
        for info in batch:
            yield info
