"""Transport security and the cluster secret.

- TLS: ``--tls-cert`` and ``--tls-key`` (PEM files) make every gRPC listener
  TLS-only; with ``--tls-ca`` every peer and client must also present a
  certificate that CA signed (mutual TLS), and this node presents its own
  certificate when it calls its peers.
- HTTPS: ``--http-tls-cert`` and ``--http-tls-key`` make the HTTP listener
  (REST API, Workers binding, console, /metrics) HTTPS-only; with
  ``--http-tls-ca`` clients must present a certificate that CA signed.
- Cluster secret: when set (``--cluster-secret-file`` or RUMOR_CLUSTER_SECRET,
  never only argv), every Replication, Admin and Faults call must carry it in
  the ``x-rumor-cluster-secret`` metadata; the node sends it on its own calls.
  The file may hold two secrets during a rotation: the node sends the first and
  accepts both, so nodes that switched and nodes that did not still agree.
"""

from __future__ import annotations

import contextvars
import hmac
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from rumor.node.server import auth
from rumor.node.server.audit import OPEN_CALLER, AuditLog

SECRET_HEADER = "x-rumor-cluster-secret"
SECRET_REFUSED = (
    "missing or invalid cluster secret (x-rumor-cluster-secret; `rumor admin` and"
    " `rumor cluster` take --cluster-secret-file)"
)
SECRET_OR_TOKEN_REFUSED = (
    "missing or invalid cluster secret (x-rumor-cluster-secret; `rumor admin` and"
    " `rumor cluster` take --cluster-secret-file) or API token with the admin scope"
    " on every namespace"
)


class SecurityError(ValueError):
    """A certificate, key or secret that cannot be used; the message names the file."""


def _read(path: str, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SecurityError(f"cannot read the {what} {path}: {exc.strerror}") from exc
    if not data.strip():
        raise SecurityError(f"the {what} {path} is empty")
    return data


@dataclass(frozen=True, slots=True)
class Tls:
    cert: bytes
    key: bytes
    ca: bytes | None

    @classmethod
    def load(cls, cert: str, key: str, ca: str) -> Tls | None:
        if not cert and not key:
            if ca:
                raise SecurityError("--tls-ca needs --tls-cert and --tls-key")
            return None
        if not (cert and key):
            raise SecurityError("--tls-cert and --tls-key go together")
        certificate = _read(cert, "TLS certificate")
        if b"BEGIN CERTIFICATE" not in certificate:
            raise SecurityError(f"the TLS certificate {cert} is not a PEM certificate")
        private_key = _read(key, "TLS key")
        if b"PRIVATE KEY" not in private_key:
            raise SecurityError(f"the TLS key {key} is not a PEM private key")
        authority = _read(ca, "TLS CA") if ca else None
        return cls(certificate, private_key, authority)

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)],
            root_certificates=self.ca,
            require_client_auth=self.ca is not None,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


MAX_SECRETS = 2  # the current one and, during a rotation, one more


def http_tls_context(cert: str, key: str, ca: str) -> ssl.SSLContext | None:
    """The HTTP listener's TLS (``--http-tls-cert``, ``--http-tls-key``, ``--http-tls-ca``
    for client certificates), or None for plain HTTP."""
    if not cert and not key:
        if ca:
            raise SecurityError("--http-tls-ca needs --http-tls-cert and --http-tls-key")
        return None
    if not (cert and key):
        raise SecurityError("--http-tls-cert and --http-tls-key go together")
    if b"BEGIN CERTIFICATE" not in _read(cert, "HTTP TLS certificate"):
        raise SecurityError(f"the HTTP TLS certificate {cert} is not a PEM certificate")
    if b"PRIVATE KEY" not in _read(key, "HTTP TLS key"):
        raise SecurityError(f"the HTTP TLS key {key} is not a PEM private key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
        if ca:
            _read(ca, "HTTP TLS CA")
            context.load_verify_locations(ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except ssl.SSLError as exc:
        raise SecurityError(f"the HTTP TLS certificate, key or CA cannot be used: {exc}") from exc
    return context


def load_secrets(secret_file: str, env_value: str | None) -> list[str]:
    """The cluster secrets: the file's non-empty lines (at most two: during a rotation
    a node accepts both and sends the first), else the environment value; [] for none."""
    if secret_file:
        try:
            text = _read(secret_file, "cluster secret file").decode()
        except UnicodeDecodeError:
            raise SecurityError(
                f"the cluster secret file {secret_file} is not text (UTF-8): write the"
                " secret as one line of text"
            ) from None
        secrets = [line.strip() for line in text.splitlines() if line.strip()]
    else:
        secrets = [(env_value or "").strip()] if (env_value or "").strip() else []
    if len(secrets) > MAX_SECRETS:
        raise SecurityError(
            f"the cluster secret file {secret_file} holds {len(secrets)} secrets;"
            f" at most {MAX_SECRETS} (the one to send first, then the other one accepted)"
        )
    return secrets


class SecretChecker:
    """Accepts any of the cluster secrets it holds; ``current`` is the one to send.

    ``replace`` swaps them in place (a rotation): every holder sees the new set.
    """

    def __init__(self, secrets: str | Sequence[str]) -> None:
        self._secrets: tuple[bytes, ...] = ()
        self.current = ""
        self.replace([secrets] if isinstance(secrets, str) else secrets)

    def replace(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise SecurityError("a cluster secret cannot be removed without a restart")
        self._secrets = tuple(secret.encode() for secret in secrets)
        self.current = secrets[0]

    def allows(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> bool:
        for name, value in metadata or ():
            if name == SECRET_HEADER:
                given = value if isinstance(value, bytes) else value.encode()
                matched = False
                for secret in self._secrets:  # no early exit: same work for each secret
                    matched |= hmac.compare_digest(given, secret)
                return matched
        return False


_ADMIN_CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("admin_caller", default="")


def admin_caller() -> str:
    """Who the Admin call being served is: ``cluster-secret``, a token id, or ``open``."""
    return _ADMIN_CALLER.get()


def set_admin_caller(caller: str) -> None:
    """Name the caller once a later check (the admin token) has let it in."""
    _ADMIN_CALLER.set(caller)


class SecretAccess:
    """The ``rpc.Authorizer`` of Replication, Admin and Faults: the cluster secret.

    With ``tokens``, a token holding ``admin`` on every namespace is accepted
    too (the Admin service); with ``audit``, every call is logged with who made
    it (``cluster-secret`` or the token's id) and how it ended.
    """

    def __init__(
        self,
        secret: SecretChecker | None,
        tokens: auth.TokenChecker | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.secret = secret
        self.tokens = tokens
        self.audit = audit

    @property
    def refusal(self) -> str:
        if self.tokens is not None and self.tokens.enabled:
            return SECRET_OR_TOKEN_REFUSED
        return SECRET_REFUSED

    def authenticate(self, method: str, metadata: Any) -> bool:
        if self.secret is not None and self.secret.allows(metadata):
            _ADMIN_CALLER.set(auth.SECRET_ID)
            return True
        if self.tokens is not None and self.tokens.enabled:
            grant = self.tokens.grant_of(auth.authorization_of(metadata))
            if grant is not None and auth.Scope.ADMIN in grant.scopes and not grant.limited:
                _ADMIN_CALLER.set(grant.token_id)
                return True
        _ADMIN_CALLER.set(OPEN_CALLER)
        return self.secret is None  # no secret: the services are open (loopback only)

    async def permit(self, method: str, request: Any) -> None:
        return None

    def permits_at_once(self, method: str) -> bool:
        return True  # the secret or the token let the caller in: every method is open

    def ended(self, method: str, request: Any, response: Any, status: str) -> None:
        if self.audit is not None:
            self.audit.record(
                "admin.call", token=_ADMIN_CALLER.get(), method=method, outcome=status
            )
