"""A worker process: the node's client listeners on one more core.

The owner starts it with the node's configuration and the addresses to share
(``WorkerPlan``, in the environment). It binds the node's gRPC and HTTP
addresses with SO_REUSEPORT, checks each client's credentials, serves KV reads
and writes through its batched stream to the owner (``kv_proxy``) and forwards
everything else (``forwarding``, ``http_proxy``). It prints one JSON line,
``{"event": "worker.ready", ...}``, once it serves; it stops on SIGTERM and
when its owner is gone (the kernel signals it when the owner dies, and it
notices the owner's socket going away).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
import structlog
from aiohttp import web
from grpc_reflection.v1alpha import reflection

from rumor.node.server.admission import ByteBudget, CallBudget
from rumor.node.server.grpc import rpc
from rumor.node.server.grpc.server import (
    ADMIN_SERVICE,
    FAULTS_SERVICE,
    HEALTH_SERVICE,
    KV_SERVICE,
    REPLICATION_SERVICE,
    GrpcServer,
)
from rumor.node.server.http.entry import Authorize, Entry, RequestHandler
from rumor.node.server.http.guard import HttpGuard
from rumor.node.server.http.session_header import carries_session
from rumor.node.server.loop_lag import LoopLag
from rumor.node.server.metrics import RequestMetrics
from rumor.node.server.workers import forwarding
from rumor.node.server.workers.forwarded_operations import ForwardedOperations
from rumor.node.server.workers.http_proxy import build_proxy
from rumor.node.server.workers.kv_proxy import WorkerKV
from rumor.node.server.workers.owner_link import OwnerLink, owner_http_path

log = structlog.get_logger(__name__)

PLAN_ENV = "RUMOR_WORKER_PLAN"
BATCHED_KV_METHODS = ("Get", "BulkGet", "Put", "Delete", "List", "Batch")
HTTP_MAX_BODY_BYTES = 128 * 1024 * 1024
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    """What the owner tells a worker: who it is and what to share."""

    index: int
    socket_dir: str  # the owner's private sockets
    grpc_address: str  # the node's client gRPC address (host:port), shared
    http_address: str  # the node's HTTP address, shared ("" when none)
    config: str  # the owner's resolved settings (``Config.to_json``)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, text: str) -> WorkerPlan:
        return cls(**json.loads(text))


def _die_with_owner() -> None:
    """Ask the kernel for SIGTERM when the owner (our parent) dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the socket watch below still ends us
        pass


def _guarded(
    name: str, handler: grpc.RpcMethodHandler[Any, Any], authorize: rpc.Authorize | None
) -> grpc.RpcMethodHandler[Any, Any]:
    """A forwarding handler that checks the client's token first (as the owner's would)."""
    if authorize is None:
        return handler

    async def refuse(context: Any) -> None:
        if not authorize(context.invocation_metadata()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, rpc.UNAUTHENTICATED_DETAILS)

    if handler.response_streaming:
        inner_stream: Any = handler.unary_stream or handler.stream_stream

        async def streaming(request: Any, context: Any) -> Any:
            await refuse(context)
            async for response in inner_stream(request, context):
                yield response

        if handler.request_streaming:
            return grpc.stream_stream_rpc_method_handler(streaming)
        return grpc.unary_stream_rpc_method_handler(streaming)
    inner: Any = handler.unary_unary or handler.stream_unary

    async def unary(request: Any, context: Any) -> Any:
        await refuse(context)
        return await inner(request, context)

    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(unary)
    return grpc.unary_unary_rpc_method_handler(unary)


def _kv_handlers(
    owner: OwnerLink,
    authorize: rpc.Authorize | None,
    budget: CallBudget,
    observe: rpc.Observe,
) -> grpc.GenericRpcHandler[Any, Any]:
    batched = WorkerKV(owner)
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in KV_SERVICE.methods:
        if method.name in BATCHED_KV_METHODS:
            handlers[method.name] = rpc.method_handler(
                method, getattr(batched, method.name), authorize, observe, budget
            )
        else:
            handlers[method.name] = _guarded(
                method.name, forwarding.method_handler(owner.channel, KV_SERVICE, method), authorize
            )
    return grpc.method_handlers_generic_handler(KV_SERVICE.full_name, handlers)


METRICS_INTERVAL_S = 1.0


def metrics_path(socket_dir: str, index: int) -> Path:
    return Path(socket_dir) / f"metrics-worker-{index}.prom"


async def _publish_metrics(metrics: RequestMetrics, plan: WorkerPlan) -> None:
    """Leave this worker's series where the owner's ``/metrics`` adds them up, every second."""
    path = metrics_path(plan.socket_dir, plan.index)
    scratch = path.with_suffix(".tmp")
    while True:
        text, _ = metrics.render()
        with contextlib.suppress(OSError):  # the owner is going away
            scratch.write_bytes(text)
            scratch.replace(path)
        await asyncio.sleep(METRICS_INTERVAL_S)


def worker_expositions(socket_dir: str) -> list[str]:
    """What every worker of an owner last published (for its ``/metrics``)."""
    texts = []
    for path in sorted(Path(socket_dir).glob("metrics-worker-*.prom")):
        with contextlib.suppress(OSError):
            texts.append(path.read_text())
    return texts


async def _watch_owner(socket_dir: str, stop: asyncio.Event) -> None:
    while not stop.is_set():
        if not os.path.exists(owner_http_path(socket_dir)) and not os.path.exists(
            f"{socket_dir}/grpc.sock"
        ):
            log.warning("worker.owner_gone")
            stop.set()
            return
        if os.getppid() == 1:
            stop.set()
            return
        await asyncio.sleep(0.5)


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker checks and bounds, made by the owner's configuration."""

    kv_authorize: rpc.Authorize | None  # the gRPC KV token check
    http_authorize: Authorize | None  # the HTTP token check
    http_guard: HttpGuard | None
    tls: Any
    max_calls: int
    read_bytes_in_flight: int
    read_admission_timeout_s: float


async def serve(plan: WorkerPlan, settings: WorkerSettings) -> int:
    """Serve as a worker until SIGTERM or the owner's end; returns the exit status."""
    _die_with_owner()
    structlog.contextvars.bind_contextvars(worker=plan.index)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    owner = OwnerLink(plan.socket_dir)
    metrics = RequestMetrics()
    calls = CallBudget(settings.max_calls)
    server = await _serve_grpc(plan, settings, owner, metrics, calls)
    runner = await _serve_http(plan, settings, owner, metrics, calls)
    print(json.dumps({"event": "worker.ready", "worker": plan.index}), flush=True)
    log.info("worker.serving", grpc=plan.grpc_address, http=plan.http_address or None)
    background = [
        asyncio.create_task(_watch_owner(plan.socket_dir, stop)),
        asyncio.create_task(LoopLag(metrics.observe_loop_lag).run()),
        asyncio.create_task(_publish_metrics(metrics, plan)),
    ]
    await stop.wait()
    for task in background:
        task.cancel()
    await server.stop(1.0)
    if runner is not None:
        await runner.cleanup()
    await owner.close()
    log.info("worker.stopped")
    return 0


async def _serve_grpc(
    plan: WorkerPlan,
    settings: WorkerSettings,
    owner: OwnerLink,
    metrics: RequestMetrics,
    calls: CallBudget,
) -> GrpcServer:
    server = GrpcServer(reuse_port=True, health=False)  # the owner's health is the node's
    server.server.add_generic_rpc_handlers(
        (_kv_handlers(owner, settings.kv_authorize, calls, metrics.observe),)
    )
    for descriptor in (REPLICATION_SERVICE, ADMIN_SERVICE, FAULTS_SERVICE, HEALTH_SERVICE):
        handlers = forwarding.service_handler(owner.channel, descriptor)
        server.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(descriptor.full_name, handlers),)
        )
    names = [d.full_name for d in (KV_SERVICE, REPLICATION_SERVICE, ADMIN_SERVICE, HEALTH_SERVICE)]
    reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), server.server)
    tls = settings.tls
    server.bind(plan.grpc_address, tls.server_credentials() if tls is not None else None)
    await server.start()
    return server


async def _serve_http(
    plan: WorkerPlan,
    settings: WorkerSettings,
    owner: OwnerLink,
    metrics: RequestMetrics,
    calls: CallBudget,
) -> web.AppRunner | None:
    """The values routes and the Workers binding answered here (through the owner's
    operations); every other request passed to the owner's HTTP listener as it is."""
    if not plan.http_address:
        return None
    runner = web.AppRunner(
        build_proxy(owner_http_path(plan.socket_dir), HTTP_MAX_BODY_BYTES), access_log=None
    )
    await runner.setup()
    entry = Entry(
        ForwardedOperations(owner),
        ByteBudget(settings.read_bytes_in_flight, settings.read_admission_timeout_s),
        authorize=settings.http_authorize,
        observe=metrics.observe,
        guard=settings.http_guard or HttpGuard.for_listener(plan.http_address),
        calls=calls,
        client_disconnected=metrics.http_client_disconnects.inc,
    )
    assert runner.server is not None
    runner.server.request_handler = _sessions_to_owner(
        entry.before_routing(runner.server.request_handler), runner.server.request_handler
    )
    host, _, port = plan.http_address.rpartition(":")
    await web.TCPSite(runner, host.strip("[]"), int(port), reuse_port=True).start()
    return runner


def _sessions_to_owner(answer: RequestHandler, to_owner: RequestHandler) -> RequestHandler:
    """A request waiting for a session token or bounding its staleness goes to the owner:
    only its replica can wait for a token or bound its lag (``session_header``)."""

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if carries_session(request):
            return await to_owner(request)
        return await answer(request)

    return handle


def plan_from_environment() -> WorkerPlan | None:
    text = os.environ.get(PLAN_ENV)
    return None if text is None else WorkerPlan.from_env(text)


def exit_with(status: int) -> None:  # pragma: no cover - process exit
    sys.exit(status)
