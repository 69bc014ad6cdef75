"""A node's client listeners: the gRPC server bound, the HTTP gateway served.

``bind_grpc`` binds the gRPC server (with workers, to the owner's private
socket: the workers listen for clients) and warns when a listener is exposed
off loopback without TLS. ``serve_http`` builds the Cloudflare-compatible
gateway with the web console's routes and serves it on ``--http`` (or, with
workers, on the owner's private socket).
"""

from __future__ import annotations

from typing import Any

import structlog

from rumor.node.config import Config
from rumor.node.server.access import HttpAccess, titles_of
from rumor.node.server.console import app as console
from rumor.node.server.exposure import is_loopback
from rumor.node.server.grpc.server import BindError, GrpcServer
from rumor.node.server.health import Health
from rumor.node.server.http.gateway import build_app, serve, serve_unix
from rumor.node.server.http.guard import HttpGuard
from rumor.node.server.workers.owner import OwnerListeners
from rumor.node.services import Services, Wiring
from rumor.node.startup import Security

log = structlog.get_logger(__name__)


def bind_grpc(
    listen: str, security: Security, owner: OwnerListeners | None
) -> tuple[GrpcServer, str]:
    """The gRPC server bound to ``listen`` (or, with workers, the owner's socket), not
    serving; and the address it is bound to."""
    server = GrpcServer()
    if owner is not None:  # workers listen for clients; the owner, for its workers
        server.bind(owner.grpc_target)
        listen = owner.grpc.address
    else:
        listen = server.bind(
            listen,
            security.tls.server_credentials() if security.tls is not None else None,
        )
    if security.tls is None and not is_loopback(listen):
        log.warning(
            "listener.exposed",
            listen=listen,
            reason="not on loopback and without TLS: traffic is readable on the network",
        )
    return server, listen


async def serve_http(
    config: Config, address: str, wiring: Wiring, services: Services
) -> tuple[Any, str | None]:
    """The HTTP gateway and the console served on ``address`` (``host:port``); its runner
    and the address it listens on, or (None, None) without ``--http``."""
    if not config.http:
        return None, None
    security = wiring.security
    tokens = security.tokens
    access = HttpAccess(tokens, titles_of(services.operations.get_namespace), security.audit)
    guard = HttpGuard.for_listener(
        config.http,
        advertise=wiring.advertise,
        allowed_hosts=config.http_allowed_hosts,
        token_valid=tokens.http_status if tokens.enabled else None,
    )
    driver = wiring.driver
    gateway = build_app(
        services.operations,
        authorize=access,
        health=lambda: Health(driver.ready, driver.not_ready, driver.writes_refused),
        metrics_text=services.metrics.render,
        observe=services.metrics.observe,
        guard=guard,
        reads=wiring.reads,
        calls=wiring.client_calls,
        uploads=wiring.uploads,
        client_disconnected=services.metrics.http_client_disconnects.inc,
    )
    console.add_routes(
        gateway,
        console.Console(
            services.operations,
            services.cluster_view,
            access=access,
            experiments_dir=config.experiments_dir,
        ),
    )
    if wiring.owner is not None and wiring.owner.http is not None:
        runner = await serve_unix(gateway, wiring.owner.http_path)
        return runner, wiring.owner.http.address
    host, _, port = address.rpartition(":")
    try:
        return await serve(gateway, host, int(port), wiring.security.http_tls)
    except OSError as exc:
        raise BindError(f"cannot listen on {config.http}: {exc.strerror}") from exc
