"""Secrets read again while a node serves: on SIGHUP, and when their files change.

The API token files and the cluster secret are checked every
``SECURITY_POLL_S``; a reload hands the new call metadata to the peer
transport and the console's peer feeds, so what the node sends changes with
what it accepts. A node's workers watch the same files on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal

from rumor.node import shutdown
from rumor.node.server.driver.peer_transport import GrpcTransport
from rumor.node.services import Services, Wiring

SECURITY_POLL_S = 1.0  # how often token and secret files are checked for a change


def reload_security_on_change(
    wiring: Wiring, services: Services, stack: contextlib.AsyncExitStack
) -> None:
    """Token and cluster secret files are read again on SIGHUP and when they change
    (checked every ``SECURITY_POLL_S``); the watch stops with the node's exit stack."""

    def reload(reason: str) -> None:
        security = wiring.security
        if not security.reload(reason):
            return
        transport = wiring.driver.transport
        if isinstance(transport, GrpcTransport):
            transport.metadata = security.call_metadata  # what it sends from now on
        peers = services.cluster_view.peers
        if peers is not None:
            peers.access = dataclasses.replace(
                peers.access,
                api_token=security.api_token,
                admin_metadata=security.call_metadata,
            )

    async def watch() -> None:
        while True:
            await asyncio.sleep(SECURITY_POLL_S)
            if wiring.security.files_changed():
                reload("file changed")

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload, "SIGHUP")
    watcher = asyncio.create_task(watch(), name="security-files")
    stack.push_async_callback(shutdown.cancelled, watcher)
