"""``rumor admin``: operator commands on one running node (checkpoint, backup, drain,
status, remove-node), over its Admin service with the cluster secret; and restore,
which makes a data directory from a backup.

On a node without a cluster secret, drain and remove-node carry its admin
token instead: read from ``--admin-token-file``, else from the file the node
names in its Status (in its data directory, readable by its user only), which
works when run on the node's host as the node's user.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import grpc

from rumor.node.cluster_cli import (
    STATES,
    ClusterError,
    admin_call,
    node_status,
    read_secret,
    secret_option,
)
from rumor.node.server.backup import fetch as backup_fetch
from rumor.node.server.backup import restore as backup_restore
from rumor.node.server.backup.archive import BackupError
from rumor.v1 import admin_pb2


@click.group("admin")
def admin() -> None:
    """Operator commands on a running node; restore of a backup into a new data directory."""


def _endpoint_option(command: Any) -> Any:
    return click.option(
        "--endpoint",
        envvar="RUMOR_ENDPOINT",
        default="127.0.0.1:7401",
        show_default=True,
        help="The node to ask; env RUMOR_ENDPOINT.",
    )(command)


def _admin_token_option(command: Any) -> Any:
    return click.option(
        "--admin-token-file",
        "token_file",
        envvar="RUMOR_ADMIN_TOKEN_FILE",
        default=None,
        type=click.Path(dir_okay=False),
        help="On a node without a cluster secret: its admin-token file (in its data"
        " directory, written at each start). Default: the file the node names, read when"
        " run on its host as its user; env RUMOR_ADMIN_TOKEN_FILE.",
    )(command)


def _read_admin_token(token_file: str, named_by: str = "") -> str:
    try:
        token = Path(token_file).read_text().strip()
    except OSError as exc:
        where = f" ({named_by})" if named_by else ""
        raise ClusterError(
            f"cannot read the admin token file {token_file}{where}: {exc.strerror};"
            " run this as the node's user on its host, or give --admin-token-file"
        ) from None
    except UnicodeDecodeError:
        raise ClusterError(f"the admin token file {token_file} is not text") from None
    if not token:
        raise ClusterError(f"the admin token file {token_file} is empty")
    return token


def _admin_token(endpoint: str, secret: str | None, token_file: str | None) -> str | None:
    """What drain and remove-node carry besides the secret: the node's admin token when
    it has no cluster secret (None with a secret, which is enough)."""
    if token_file:
        return _read_admin_token(token_file)
    if secret:
        return None
    answer = node_status(endpoint, 30, None)
    if answer is None or not answer.admin_token_file:
        return None  # a node with a secret asks for it; one too old to have a token needs none
    return _read_admin_token(answer.admin_token_file, f"named by {endpoint}")


@admin.command("checkpoint")
@click.argument("directory")
@_endpoint_option
@secret_option
def checkpoint(directory: str, endpoint: str, secret_file: str | None) -> None:
    """Write a consistent checkpoint of the node's data to DIRECTORY (on the node's host).

    DIRECTORY is a new directory under the node's --checkpoint-dir (a name
    relative to it, or an absolute path inside it). Start a node on it
    (--data-dir DIRECTORY) to restore: it takes a new id and catches up.
    """
    try:
        answer = admin_call(
            endpoint,
            "Checkpoint",
            admin_pb2.CheckpointRequest(directory=directory),
            admin_pb2.CheckpointResponse,
            300,
            read_secret(secret_file),
        )
    except grpc.RpcError as error:
        raise ClusterError(f"{endpoint}: {error.details()}") from None
    click.echo(f"Checkpoint written to {answer.directory} on the node's host.", err=True)


@admin.command("drain")
@_endpoint_option
@secret_option
@_admin_token_option
def drain(endpoint: str, secret_file: str | None, token_file: str | None) -> None:
    """Make the node leave the cluster gracefully and stop."""
    secret = read_secret(secret_file)
    try:
        admin_call(
            endpoint,
            "Drain",
            admin_pb2.DrainRequest(),
            admin_pb2.DrainResponse,
            30,
            secret,
            _admin_token(endpoint, secret, token_file),
        )
    except grpc.RpcError as error:
        raise ClusterError(f"{endpoint}: {error.details()}") from None
    click.echo(f"{endpoint} is leaving the cluster and stopping.", err=True)


@admin.command("status")
@_endpoint_option
@secret_option
def admin_status(endpoint: str, secret_file: str | None) -> None:
    """The node's own view: id, readiness, clock fencing, counters, members (JSON)."""
    answer = node_status(endpoint, 10, read_secret(secret_file))
    if answer is None:
        raise ClusterError(f"{endpoint} did not answer Admin.Status")
    click.echo(
        json.dumps(
            {
                "node_id": f"{answer.node_id:016x}",
                "name": answer.name,
                "address": answer.address,
                "ready": answer.ready,
                "fenced": answer.fenced,
                "records": answer.records_held,
                "tombstones": answer.tombstones_held,
                "deferred": answer.deferred_records,
                "audit_repairs_total": answer.audit_repairs_total,
                "max_event_loop_lag_ms": round(answer.max_event_loop_lag_ms, 1),
                "members": [
                    {
                        "id": f"{m.member.id:016x}",
                        "name": m.member.name,
                        "address": m.member.address,
                        "state": STATES.get(m.member.state, "?"),
                        "incarnation": m.member.incarnation,
                    }
                    for m in answer.members
                ],
            },
            indent=2,
        )
    )


@admin.command("remove-node")
@click.argument("node_id")
@click.option(
    "--endpoint",
    envvar="RUMOR_ENDPOINT",
    default="127.0.0.1:7401",
    show_default=True,
    help="Any live member; env RUMOR_ENDPOINT.",
)
@secret_option
@_admin_token_option
def remove_node(
    node_id: str, endpoint: str, secret_file: str | None, token_file: str | None
) -> None:
    """Remove member NODE_ID (16 hex digits) from the cluster, for ever.

    A replicated retirement record is written; the removed id is refused from
    then on, and garbage collection stops waiting for it. To bring the machine
    back, start it with --rejoin-as-new (it wipes its data directory and joins
    as a new node), or wipe the data directory yourself.
    """
    try:
        member = int(node_id, 16)
    except ValueError:
        raise ClusterError(f"NODE_ID must be 16 hex digits; got {node_id!r}") from None
    secret = read_secret(secret_file)
    try:
        admin_call(
            endpoint,
            "RemoveNode",
            admin_pb2.RemoveNodeRequest(node_id=member),
            admin_pb2.RemoveNodeResponse,
            30,
            secret,
            _admin_token(endpoint, secret, token_file),
        )
    except grpc.RpcError as error:
        raise ClusterError(f"{endpoint}: {error.details()}") from None
    click.echo(f"Removed node {member:016x}.", err=True)


@admin.command("backup")
@click.argument("dest")
@_endpoint_option
@secret_option
def backup(dest: str, endpoint: str, secret_file: str | None) -> None:
    """Back up the node's data, streamed off its host, to DEST.

    DEST is a directory on this machine (made if absent): a backup to a
    directory that holds earlier ones copies only the files they lack. DEST
    `-` writes the whole backup as a tar stream to standard output, for
    `| ssh HOST 'cat > backup.tar'` or `| aws s3 cp - s3://BUCKET/backup.tar`.
    Every file is checked (size and CRC-32) as it arrives.
    """
    secret = read_secret(secret_file)

    def chunks(held: set[tuple[str, int, int]]) -> Any:
        return backup_fetch.call_backup(endpoint, secret, held)

    try:
        if dest == "-":
            taken = backup_fetch.to_stream(chunks, sys.stdout.buffer)
        else:
            taken = backup_fetch.to_directory(chunks, dest)
    except BackupError as error:
        raise ClusterError(f"backup of {endpoint} failed: {error}") from None
    manifest = taken.manifest
    click.echo(
        f"Backup {manifest.backup_id} of node {manifest.node_id}: {len(manifest.files)} files,"
        f" {manifest.total_bytes} bytes; {taken.files_sent} files ({taken.bytes_sent} bytes)"
        f" copied to {taken.where}.",
        err=True,
    )


@admin.command("restore")
@click.argument("source")
@click.option(
    "--data-dir",
    required=True,
    type=click.Path(file_okay=False),
    help="The new node's data directory: absent or empty.",
)
@click.option(
    "--backup",
    "backup_id",
    default=None,
    help="Which backup of SOURCE (a directory) to restore; default: the newest.",
)
def restore(source: str, data_dir: str, backup_id: str | None) -> None:
    """Restore a backup into a new data directory, for the first node of a new cluster.

    SOURCE is a backup directory or `-` (a backup stream on standard input).
    Every file is checked against the backup's manifest; a corrupt or missing
    one is refused and the data directory is left as it was. Start the node
    on DATA_DIR without --seeds: it takes a new id and starts a new cluster,
    which other nodes join with empty data directories.
    """
    try:
        if source == "-":
            if backup_id is not None:
                raise ClusterError("--backup names a backup in a directory, not in a stream")
            manifest = backup_restore.restore_from_stream(sys.stdin.buffer, data_dir)
        else:
            manifest = backup_restore.restore_from_directory(source, data_dir, backup_id)
    except BackupError as error:
        raise ClusterError(f"restore refused: {error}") from None
    click.echo(
        f"Restored backup {manifest.backup_id} of node {manifest.node_id}"
        f" ({len(manifest.files)} files, {manifest.total_bytes} bytes) into {data_dir}."
        f" Start it without --seeds: rumor node --data-dir {data_dir}",
        err=True,
    )
