"""Holding a TCP port for the workers: bound with SO_REUSEPORT, never listening.

A listening socket would take its share of the connections the kernel spreads
over the port's sockets, and the owner never accepts. A bound socket that does
not listen takes none, yet keeps the port (and ``:0``'s choice of it) for the
workers, which bind the same address with SO_REUSEPORT and listen.
"""

from __future__ import annotations

import socket


class PortReservation:
    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # First without SO_REUSEPORT: a port another process shares (say, another node's
        # workers) must be refused as in use, not joined.
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, int(port)))
            bound_port = probe.getsockname()[1]
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            self._socket.bind((host, bound_port))
        except OSError:
            self._socket.close()
            raise
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        self.address = f"{shown}:{bound_port}"
        self.host = host
        self.port = bound_port

    def close(self) -> None:
        self._socket.close()
