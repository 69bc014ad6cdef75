"""The owner's listeners when it has workers: private sockets, and the public ports held.

The owner serves every service on a Unix socket in a directory only its user
can enter (gRPC, and HTTP when the node has an HTTP listener); the workers,
and nothing else, connect there. The node's public gRPC and HTTP ports are
held (``PortReservation``) so the workers can share them and ``:0`` keeps its
choice across worker restarts. It also publishes, in that directory, what a
worker must know before it answers a read from its own view of the database
(``owner_state``): the latest acknowledged write's sequence number, the lag
bound, whether reads are refused.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from typing import Protocol

from rumor.node.core.errors import Unavailable
from rumor.node.server.grpc.server import BindError
from rumor.node.server.workers.owner_link import owner_grpc_target, owner_http_path
from rumor.node.server.workers.owner_state import OwnerStatePublisher, monotonic_ms
from rumor.node.server.workers.ports import PortReservation

# How often the lag bound and the refusal of reads are published (a worker ages the
# bound by the time since: a read answered by a worker reports up to this much more).
PUBLISH_INTERVAL_S = 0.02


class OwnerListeners:
    def __init__(self, grpc_listen: str, http_listen: str) -> None:
        self.grpc = _reserve(grpc_listen)
        try:
            self.http = _reserve(http_listen) if http_listen else None
        except BindError:
            self.grpc.close()
            raise
        self.socket_dir = tempfile.mkdtemp(prefix="rumor-owner-")  # mode 0700
        self.state = OwnerStatePublisher(self.socket_dir)

    @property
    def grpc_target(self) -> str:
        return owner_grpc_target(self.socket_dir)

    @property
    def http_path(self) -> str:
        return owner_http_path(self.socket_dir)

    def acknowledging(self, latest_seq: Callable[[], int]) -> Callable[[], None]:
        """The group commit's hook: writes up to the store's latest seq are about to be
        acknowledged, and the workers' reads must see them."""
        state = self.state

        def publish() -> None:
            state.acknowledging(latest_seq())

        return publish

    def close(self) -> None:
        self.state.close()
        self.grpc.close()
        if self.http is not None:
            self.http.close()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def _reserve(address: str) -> PortReservation:
    try:
        return PortReservation(address)
    except OSError as error:
        raise BindError(f"cannot listen on {address}: {error.strerror}") from error


class ReadRules(Protocol):
    """What the owner publishes of its replication (``EngineDriver``)."""

    def check_readable(self) -> None: ...

    def lag_bound_ms(self) -> int | None: ...


def publish_state(
    state: OwnerStatePublisher,
    latest_seq: Callable[[], int],
    rules: ReadRules,
    has_peers: Callable[[], bool],
) -> None:
    """Publish everything a worker's read needs, as it is now (one step of the loop:
    no write comes between the seq and the bound)."""
    try:
        rules.check_readable()
        refused = False
    except Unavailable:
        refused = True
    at_ms = monotonic_ms()
    seq = latest_seq()
    state.publish(seq, rules.lag_bound_ms(), at_ms, refused, has_peers())


async def keep_publishing(
    state: OwnerStatePublisher,
    latest_seq: Callable[[], int],
    rules: ReadRules,
    has_peers: Callable[[], bool],
) -> None:
    """``publish_state`` every ``PUBLISH_INTERVAL_S`` (records from peers, the lag bound
    and the clock fence change without a client's write), until cancelled."""
    while True:
        publish_state(state, latest_seq, rules, has_peers)
        await asyncio.sleep(PUBLISH_INTERVAL_S)
