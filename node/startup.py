"""What a node settles before it serves: who may call it, its id, its loop, its collector.

``Security`` gathers the API tokens and their scopes (KV), the cluster secret
(node-to-node and admin calls), TLS and the audit trail, gives each gRPC
service its authorizer, and refuses exposed listeners without them (unless
``--insecure``); ``new_node_id`` draws an id on a first start;
``event_loop_factory`` picks asyncio's loop or uvloop; ``throttled_loop_errors``
keeps a failing ``accept`` from flooding the log; ``tune_garbage_collector``
keeps start-up objects out of the collector's walks.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from rumor.node.config import Config
from rumor.node.server.access import KvAccess, Titles
from rumor.node.server.audit import AuditLog
from rumor.node.server.auth import TokenChecker, load_tokens
from rumor.node.server.exposure import Exposure
from rumor.node.server.grpc.rpc import Authorizer
from rumor.node.server.grpc.server import (
    ADMIN_SERVICE,
    FAULTS_SERVICE,
    KV_SERVICE,
    REPLICATION_SERVICE,
)
from rumor.node.server.log_throttle import LogThrottle
from rumor.node.server.security import (
    SECRET_HEADER,
    SecretAccess,
    SecretChecker,
    SecurityError,
    Tls,
    http_tls_context,
    load_secrets,
)

log = structlog.get_logger(__name__)

Checks = dict[str, Authorizer]


def tune_garbage_collector() -> None:
    """Keep the objects the node holds from start-up out of the collector's walks.

    They live as long as the node, so ``gc.freeze`` moves them to a generation
    that is never collected. The collection thresholds stay the default:
    raising them for the whole process (100,000) saved about 15% of a bulk
    write's CPU, but also lets grpc.aio's per-call garbage pile up between
    collections; bulk writes pause the collector for their own loop instead
    (``Operations.bulk_put``).
    """
    gc.freeze()


def new_node_id() -> int:
    """A random, non-zero 64-bit node id (taken only on a first start)."""
    while True:
        node_id = int.from_bytes(os.urandom(8), "big")
        if node_id:
            return node_id


class FileStamps:
    """Notices when files change: their modification time, size and inode (a file
    replaced by a rename, as editors and Kubernetes Secret volumes do, counts)."""

    def __init__(self, paths: Sequence[str]) -> None:
        self._paths = [path for path in paths if path]
        self._seen = self._stamps()

    def _stamps(self) -> list[tuple[int, int, int] | None]:
        stamps: list[tuple[int, int, int] | None] = []
        for path in self._paths:
            try:
                info = os.stat(path)
            except OSError:
                stamps.append(None)
            else:
                stamps.append((info.st_mtime_ns, info.st_size, info.st_ino))
        return stamps

    def changed(self) -> bool:
        """Whether any file changed since the last call (or since made)."""
        now = self._stamps()
        if now == self._seen:
            return False
        self._seen = now
        return True


@dataclass(frozen=True, slots=True)
class Security:
    """Who may call what: API tokens (KV), the cluster secret (node-to-node, admin), TLS.

    The tokens and the secrets change in place on ``reload`` (SIGHUP, or a token
    or secret file that changed): every check and every call made after it
    uses the new set.
    """

    tokens: TokenChecker
    tls: Tls | None
    secret: SecretChecker | None
    audit: AuditLog
    config: Config
    files: FileStamps
    http_tls: ssl.SSLContext | None = None  # the HTTP listener's, None: plain HTTP

    @property
    def call_metadata(self) -> tuple[tuple[str, str], ...]:
        """What this node sends on its Replication and Admin calls: the current secret."""
        return () if self.secret is None else ((SECRET_HEADER, self.secret.current),)

    @property
    def api_token(self) -> str | None:
        """What this node presents to another node's KV service (its console's watches)."""
        return self.tokens.presentable()

    @classmethod
    def load(cls, config: Config) -> Security:
        tokens = TokenChecker(load_tokens(config.api_token, config.api_token_file or None, None))
        if not tokens.enabled:
            log.warning("auth.open", reason="no --api-token configured: the APIs are open")
        tls = Tls.load(config.tls_cert, config.tls_key, config.tls_ca)
        secrets = load_secrets(config.cluster_secret_file, os.environ.get("RUMOR_CLUSTER_SECRET"))
        if not secrets:
            log.warning("cluster.open", reason="no cluster secret: any host may replicate")
        Exposure(
            grpc_listen=config.listen,
            http_listen=config.http,
            has_cluster_secret=bool(secrets),
            has_api_token=tokens.enabled,
            insecure=config.insecure,
            http_tls=bool(config.http_tls_cert),
            http_behind_proxy=config.http_behind_proxy,
        ).check()
        http_tls = http_tls_context(config.http_tls_cert, config.http_tls_key, config.http_tls_ca)
        audit = AuditLog(config.audit_log)
        checker = SecretChecker(secrets) if secrets else None
        files = FileStamps([config.api_token_file, config.cluster_secret_file])
        return cls(tokens, tls, checker, audit, config, files, http_tls)

    def files_changed(self) -> bool:
        """Whether the token or cluster secret file changed since last asked."""
        return self.files.changed()

    def reload(self, reason: str) -> bool:
        """Read the token file and the cluster secret file again; keep the old sets (and
        log why) when a file does not parse or would open what is closed."""
        config = self.config
        try:
            entries = load_tokens(config.api_token, config.api_token_file or None, None)
            secrets = load_secrets(
                config.cluster_secret_file, os.environ.get("RUMOR_CLUSTER_SECRET")
            )
            if self.tokens.enabled and not entries:
                raise SecurityError("the new token set is empty: that would open the APIs")
            if self.secret is None and secrets:
                raise SecurityError("a cluster secret cannot be added without a restart")
        except ValueError as exc:  # SecurityError is one
            log.error("security.reload_failed", reason=reason, error=str(exc))
            return False
        if self.tokens.enabled or entries:
            self.tokens.replace(entries)
        if self.secret is not None:
            self.secret.replace(secrets)
        log.info(
            "security.reloaded",
            reason=reason,
            tokens=len(self.tokens.entries),
            token_ids=[entry.grant.token_id for entry in self.tokens.entries],
            secrets=0 if self.secret is None else len(secrets),
        )
        return True

    def grpc_checks(
        self, titles: Titles, *, trusted: frozenset[str] = frozenset(), worker_key: str = ""
    ) -> Checks:
        """Each service's ``rpc.Authorizer`` (a service without one is open).

        ``titles`` looks a namespace's title up (for tokens limited by title);
        ``trusted``: KV methods served without a token (a node with workers:
        their Batch stream on the owner's private socket); ``worker_key``: what
        the workers present on their own calls.
        """
        checks: Checks = {
            KV_SERVICE.full_name: KvAccess(
                self.tokens, titles, self.audit, trusted, worker_key or None
            ),
            ADMIN_SERVICE.full_name: SecretAccess(self.secret, self.tokens, self.audit),
        }
        if self.secret is not None:
            for descriptor in (REPLICATION_SERVICE, FAULTS_SERVICE):
                checks[descriptor.full_name] = SecretAccess(self.secret)
        return checks


def throttled_loop_errors() -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """The event loop's error handler, one line per cause per interval: out of file
    descriptors, ``accept`` fails in a tight loop and would log a traceback each time."""
    throttle = LogThrottle(log)

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        message = str(context.get("message", ""))
        cause = (message, type(error).__name__, getattr(error, "errno", None))
        throttle.error("loop.error", cause, message=message, error=repr(error))

    return handle


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What makes the node's event loop (``--event-loop``); None: asyncio's own.

    uvloop is optional: ``auto`` takes it only when it imports, ``uvloop``
    insists on it (a ValueError, reported as a start-up error, when missing).
    """
    if choice == "asyncio":
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        if choice == "uvloop":
            raise ValueError("--event-loop uvloop: the uvloop package is not installed") from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
