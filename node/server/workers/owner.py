"""The owner's listeners when it has workers: private sockets, and the public ports held.

The owner serves every service on a Unix socket in a directory only its user
can enter (gRPC, and HTTP when the node has an HTTP listener); the workers,
and nothing else, connect there. The node's public gRPC and HTTP ports are
held (``PortReservation``) so the workers can share them and ``:0`` keeps its
choice across worker restarts.
"""

from __future__ import annotations

import shutil
import tempfile

from rumor.node.server.grpc.server import BindError
from rumor.node.server.workers.owner_link import owner_grpc_target, owner_http_path
from rumor.node.server.workers.ports import PortReservation


class OwnerListeners:
    def __init__(self, grpc_listen: str, http_listen: str) -> None:
        self.grpc = _reserve(grpc_listen)
        try:
            self.http = _reserve(http_listen) if http_listen else None
        except BindError:
            self.grpc.close()
            raise
        self.socket_dir = tempfile.mkdtemp(prefix="rumor-owner-")  # mode 0700

    @property
    def grpc_target(self) -> str:
        return owner_grpc_target(self.socket_dir)

    @property
    def http_path(self) -> str:
        return owner_http_path(self.socket_dir)

    def close(self) -> None:
        self.grpc.close()
        if self.http is not None:
            self.http.close()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def _reserve(address: str) -> PortReservation:
    try:
        return PortReservation(address)
    except OSError as error:
        raise BindError(f"cannot listen on {address}: {error.strerror}") from error
