"""Endpoints, stickiness and failover, credentials: what both clients share.

The client sticks to one endpoint. When a call finds it UNAVAILABLE, the
client moves on to the next one (and stays there) and, if the call may be
retried, tries it there; when every endpoint failed, the error names them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from rumor.client.errors import UnavailableError

MAX_MESSAGE_BYTES = 128 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]
DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class TLS:
    """TLS settings: the CA that signed the nodes' certificates (None: the system's roots),
    and for mutual TLS this client's certificate chain and private key (PEM files)."""

    ca: str | Path | None = None
    cert: str | Path | None = None
    key: str | Path | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        def read(path: str | Path | None) -> bytes | None:
            return None if path is None else Path(path).read_bytes()

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca),
            private_key=read(self.key),
            certificate_chain=read(self.cert),
        )


class Endpoints:
    """The endpoints to call, and which one the client currently sticks to."""

    def __init__(self, endpoints: str | Sequence[str]) -> None:
        listed = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        cleaned = [endpoint.strip() for endpoint in listed if endpoint.strip()]
        if not cleaned:
            raise ValueError("give at least one endpoint, e.g. '127.0.0.1:7401'")
        self.addresses = cleaned
        self.current = 0

    def attempts(self, retry: bool) -> list[int]:
        """Endpoint indexes to try, in order, starting at the current one."""
        count = len(self.addresses) if retry else 1
        return [(self.current + step) % len(self.addresses) for step in range(count)]

    def failed(self, index: int) -> None:
        """Endpoint ``index`` was unavailable: stick to the next one from now on."""
        if index == self.current:
            self.current = (index + 1) % len(self.addresses)

    def exhausted(self, tried: list[int], last: BaseException) -> UnavailableError:
        names = ", ".join(self.addresses[index] for index in tried)
        return UnavailableError(f"no endpoint could serve the call (tried {names}): {last}")


def call_metadata(api_token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {api_token}"),) if api_token else ()


def credentials(tls: bool | TLS | None) -> grpc.ChannelCredentials | None:
    if tls is None or tls is False:
        return None
    return (TLS() if tls is True else tls).credentials()
