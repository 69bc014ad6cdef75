"""What a node settles before it serves: who may call it, its id, its loop, its collector.

``Security`` gathers the API tokens (KV), the cluster secret (node-to-node and
admin calls) and TLS, and refuses exposed listeners without them (unless
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from rumor.node.config import Config
from rumor.node.server.auth import TokenChecker, load_tokens
from rumor.node.server.exposure import Exposure
from rumor.node.server.grpc.server import (
    ADMIN_SERVICE,
    FAULTS_SERVICE,
    KV_SERVICE,
    REPLICATION_SERVICE,
)
from rumor.node.server.log_throttle import LogThrottle
from rumor.node.server.security import SECRET_HEADER, SecretChecker, Tls, load_secret

log = structlog.get_logger(__name__)


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


@dataclass(frozen=True, slots=True)
class Security:
    """Who may call what: API tokens (KV), the cluster secret (node-to-node, admin), TLS."""

    tokens: TokenChecker
    tls: Tls | None
    checks: dict[str, Any]
    call_metadata: tuple[tuple[str, str], ...]
    api_token: str | None = None  # what this node presents to another node's KV service

    @classmethod
    def load(cls, config: Config) -> Security:
        configured = load_tokens(config.api_token, config.api_token_file or None, None)
        tokens = TokenChecker(configured)
        if not tokens.enabled:
            log.warning("auth.open", reason="no --api-token configured: the APIs are open")
        tls = Tls.load(config.tls_cert, config.tls_key, config.tls_ca)
        secret = load_secret(config.cluster_secret_file, os.environ.get("RUMOR_CLUSTER_SECRET"))
        checks: dict[str, Any] = {}
        if tokens.enabled:
            checks[KV_SERVICE.full_name] = tokens.grpc_allows
        metadata: tuple[tuple[str, str], ...] = ()
        if secret is not None:
            secret_checker = SecretChecker(secret)
            for descriptor in (REPLICATION_SERVICE, ADMIN_SERVICE, FAULTS_SERVICE):
                checks[descriptor.full_name] = secret_checker.allows
            metadata = ((SECRET_HEADER, secret),)
        else:
            log.warning("cluster.open", reason="no cluster secret: any host may replicate")
        Exposure(
            grpc_listen=config.listen,
            http_listen=config.http,
            has_cluster_secret=secret is not None,
            has_api_token=tokens.enabled,
            insecure=config.insecure,
        ).check()
        return cls(tokens, tls, checks, metadata, configured[0] if configured else None)


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
