"""``rumor admin``: operator commands on one running node (checkpoint, drain,
status, remove-node), over its Admin service with the cluster secret."""

from __future__ import annotations

import json
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
from rumor.v1 import admin_pb2


@click.group("admin")
def admin() -> None:
    """Operator commands on a running node."""


def _endpoint_option(command: Any) -> Any:
    return click.option(
        "--endpoint",
        envvar="RUMOR_ENDPOINT",
        default="127.0.0.1:7401",
        show_default=True,
        help="The node to ask; env RUMOR_ENDPOINT.",
    )(command)


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
def drain(endpoint: str, secret_file: str | None) -> None:
    """Make the node leave the cluster gracefully and stop."""
    try:
        admin_call(
            endpoint,
            "Drain",
            admin_pb2.DrainRequest(),
            admin_pb2.DrainResponse,
            30,
            read_secret(secret_file),
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
def remove_node(node_id: str, endpoint: str, secret_file: str | None) -> None:
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
    try:
        admin_call(
            endpoint,
            "RemoveNode",
            admin_pb2.RemoveNodeRequest(node_id=member),
            admin_pb2.RemoveNodeResponse,
            30,
            read_secret(secret_file),
        )
    except grpc.RpcError as error:
        raise ClusterError(f"{endpoint}: {error.details()}") from None
    click.echo(f"Removed node {member:016x}.", err=True)
