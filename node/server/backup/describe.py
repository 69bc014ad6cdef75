"""What a backup is of, read from the running node: ``BackupInfo`` and its manifest form."""

from __future__ import annotations

from collections.abc import Iterable

from rumor.node.core.membership import State
from rumor.node.server.backup.archive import BackupFile, Manifest
from rumor.node.server.driver.engine_driver import EngineDriver
from rumor.v1 import admin_pb2, replication_pb2


def backup_info(driver: EngineDriver) -> admin_pb2.BackupInfo:
    """The node's id, names, HLC, durable watermarks and counted members, now. Read
    before its checkpoint is made, so the copy holds at least these watermarks."""
    replica = driver.replica
    return admin_pb2.BackupInfo(
        node_id=replica.node_id,
        name=driver.name,
        address=driver.advertise,
        hlc=replica.clock.last,
        watermarks=replica.own_watermarks(),
        members=sorted(m.id for m in driver.membership.all() if m.state is not State.REMOVED),
        taken_ms=driver.clock.wall_ms(),
    )


def manifest_of(
    info: admin_pb2.BackupInfo, files: Iterable[replication_pb2.SnapshotFile | BackupFile]
) -> Manifest:
    return Manifest(
        node_id=f"{info.node_id:016x}",
        name=info.name,
        address=info.address,
        hlc=info.hlc,
        watermarks={f"{origin:016x}": seq for origin, seq in sorted(info.watermarks.items())},
        members=[f"{member:016x}" for member in info.members],
        taken_ms=info.taken_ms,
        files=[BackupFile(f.name, f.size, f.crc32) for f in files],
    )
