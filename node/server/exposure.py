"""Secure by default: a listener reachable from the network is never open by accident.

The rule (CockroachDB's): a gRPC listener that is not on loopback needs a
cluster secret, and an HTTP listener that is not on loopback needs an API
token and TLS (``--http-tls-cert``, or ``--http-behind-proxy`` when a TLS proxy
terminates it), unless ``--insecure`` says the operator means it. Refusing to start is
louder than a warning in a log nobody reads. Loopback is ``localhost``,
``127.0.0.0/8`` and ``::1``; anything else (``0.0.0.0``, a LAN address, a
hostname) is exposed.

A token given on the command line (``--api-token``) works but is visible to
every user of the host in ``ps``; the node says so once at start-up.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from rumor.node.server.security import SecurityError


def host_of(address: str) -> str:
    """The host of ``HOST:PORT`` (brackets of an IPv6 literal removed)."""
    return address.rsplit(":", 1)[0].strip("[]")


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback(address: str) -> bool:
    return is_loopback_host(host_of(address))


@dataclass(frozen=True, slots=True)
class Exposure:
    """What a node is about to serve, and what guards it."""

    grpc_listen: str
    http_listen: str  # empty: no HTTP listener
    has_cluster_secret: bool
    has_api_token: bool
    insecure: bool
    http_tls: bool = False  # the HTTP listener speaks HTTPS
    http_behind_proxy: bool = False  # a TLS proxy fronts it

    def check(self) -> None:
        """Raise SecurityError naming the flag to use when a listener would be open."""
        if self.insecure:
            return
        problems = []
        if not self.has_cluster_secret and not is_loopback(self.grpc_listen):
            problems.append(
                f"refusing to serve gRPC on {self.grpc_listen} without a cluster secret:"
                " anyone who reaches it could replicate forged records, take checkpoints"
                " and drain the node. Give --cluster-secret-file FILE (or"
                " RUMOR_CLUSTER_SECRET), listen on 127.0.0.1, or pass --insecure."
            )
        if self.http_listen and not self.has_api_token and not is_loopback(self.http_listen):
            problems.append(
                f"refusing to serve HTTP on {self.http_listen} without an API token:"
                " anyone who reaches it could read and write every namespace. Give"
                " --api-token-file FILE (or RUMOR_API_TOKEN), listen on 127.0.0.1,"
                " or pass --insecure."
            )
        if (
            self.http_listen
            and not self.http_tls
            and not self.http_behind_proxy
            and not is_loopback(self.http_listen)
        ):
            problems.append(
                f"refusing to serve plain HTTP on {self.http_listen}: API tokens and data"
                " would cross the network in clear text. Give --http-tls-cert and"
                " --http-tls-key, pass --http-behind-proxy when a TLS proxy fronts it,"
                " listen on 127.0.0.1, or pass --insecure."
            )
        if problems:
            raise SecurityError("\n".join(problems))
