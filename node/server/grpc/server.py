"""The node's grpc.aio server: KV, health and reflection on one port."""

from __future__ import annotations

import grpc
import grpc.aio
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from rumor.node.server.admission import CallBudget
from rumor.node.server.grpc.rpc import Authorize, Observe, service_handler
from rumor.v1 import admin_pb2, faults_pb2, kv_pb2, replication_pb2

MAX_MESSAGE_BYTES = 128 * 1024 * 1024  # a 100 MB bulk write must fit
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # What grpc's core receives of a client stream before the node asks for it is its
    # flow-control window. Grown by BDP probing, it reached 4-8 MiB per stream: 20
    # PutStreams waiting for upload room held 150 MiB the node never asked for. Without
    # probing a stream's window is the next message it asks for plus 64 KiB (~2 MiB
    # each, measured); a message of any size still arrives whole.
    ("grpc.http2.bdp_probe", 0),
    ("grpc.so_reuseport", 0),
]
KV_SERVICE = kv_pb2.DESCRIPTOR.services_by_name["KV"]
REPLICATION_SERVICE = replication_pb2.DESCRIPTOR.services_by_name["Replication"]
ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["Admin"]
FAULTS_SERVICE = faults_pb2.DESCRIPTOR.services_by_name["Faults"]
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"]


class BindError(RuntimeError):
    """The listen address could not be bound."""


class GrpcServer:
    """Owns the grpc.aio server and the health status it reports."""

    def __init__(self, *, reuse_port: bool = False, health: bool = True) -> None:
        # Off by default, so a port already in use is an error; on for the workers,
        # which share the node's ports (and forward health checks to their owner).
        options = [*SERVER_OPTIONS[:-1], ("grpc.so_reuseport", 1 if reuse_port else 0)]
        self.server = grpc.aio.server(options=options)
        self.health: health_aio.HealthServicer | None = None
        if health:
            self.health = health_aio.HealthServicer()
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)

    def add_services(
        self,
        services: list[tuple[ServiceDescriptor, object]],
        *,
        authorize: dict[str, Authorize] | None = None,
        observe: Observe | None = None,
        budgets: dict[str, CallBudget] | None = None,
    ) -> None:
        """Serve ``services`` (before ``start``); ``authorize`` maps a service's full name
        to its token check (absent: open), ``budgets`` to its client-call budget."""
        checks = authorize or {}
        limits = budgets or {}
        self.server.add_generic_rpc_handlers(
            tuple(
                service_handler(
                    descriptor,
                    servicer,
                    authorize=checks.get(descriptor.full_name),
                    observe=observe,
                    budget=limits.get(descriptor.full_name),
                )
                for descriptor, servicer in services
            )
        )
        names = [descriptor.full_name for descriptor, _ in services]
        reflection.enable_server_reflection(
            (*names, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )

    def bind(self, address: str, credentials: grpc.ServerCredentials | None = None) -> str:
        """Bind ``address`` (port 0 picks a free port); returns the bound host:port."""
        try:
            if credentials is None:
                port = self.server.add_insecure_port(address)
            else:
                port = self.server.add_secure_port(address, credentials)
        except RuntimeError as exc:
            raise BindError(f"cannot listen on {address}: {exc}") from exc
        if port == 0:
            raise BindError(f"cannot listen on {address}")
        host = address.rsplit(":", 1)[0]
        return f"{host}:{port}"

    async def start(self) -> None:
        await self.server.start()

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        if self.health is None:
            return
        for service in ("", KV_SERVICE.full_name):
            await self.health.set(service, status)

    async def stop(self, grace_s: float) -> None:
        if self.health is not None:
            await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)
