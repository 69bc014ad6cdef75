"""A worker process: the node's client listeners on one more core.

The owner starts it with the node's configuration and the addresses to share
(``WorkerPlan``, in the environment). It binds the node's gRPC and HTTP
addresses with SO_REUSEPORT and checks the token and its scopes on what it
answers itself, exactly as the owner would: the KV calls it batches (each
operation of a client's Batch too) and the REST API's values routes and the
Workers binding, which it serves with its own ``http.entry.Entry``. Their plain
reads are answered from its own secondary view of the owner's database
(``secondary_reads``), their writes go through its batched stream to the owner
(``kv_proxy``, ``forwarded_operations``); everything else is forwarded
(``forwarding``, ``http_proxy``) with the client's credentials, which the
owner checks — a read carrying a session token or a staleness bound too,
since only the owner's replica can wait for the one or check the other. A token
limited to namespaces by title needs their titles: the worker asks the owner,
presenting the key the owner wrote into its private socket directory
(``WORKER_KEY_FILE``). It follows the node's token and secret files as the
owner does (SIGHUP, or a file that changed). It prints one JSON line,
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
import secrets
import signal
import ssl
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
import grpc.aio
import structlog
from aiohttp import web
from grpc_reflection.v1alpha import reflection

from rumor.node.server import access, auth
from rumor.node.server.admission import ByteBudget, CallBudget
from rumor.node.server.audit import AuditLog
from rumor.node.server.grpc import rpc
from rumor.node.server.grpc.kv_service import KVService
from rumor.node.server.grpc.server import (
    ADMIN_SERVICE,
    FAULTS_SERVICE,
    HEALTH_SERVICE,
    KV_SERVICE,
    REPLICATION_SERVICE,
    GrpcServer,
)
from rumor.node.server.http.entry import Entry, RequestHandler
from rumor.node.server.http.guard import HttpGuard
from rumor.node.server.http.session_header import carries_session
from rumor.node.server.loop_lag import LoopLag
from rumor.node.server.metrics import RequestMetrics
from rumor.node.server.upload_budget import UploadBudget
from rumor.node.server.watch import WatchHub
from rumor.node.server.workers import forwarding
from rumor.node.server.workers.forwarded_operations import ForwardedOperations, ViewedOperations
from rumor.node.server.workers.http_proxy import build_proxy
from rumor.node.server.workers.kv_proxy import LocalReads, WorkerKV
from rumor.node.server.workers.owner_link import OwnerLink, owner_http_path
from rumor.node.server.workers.owner_state import OwnerStateView
from rumor.node.server.workers.secondary_reads import SecondaryReads, secondary_dir
from rumor.v1 import kv_pb2

log = structlog.get_logger(__name__)

PLAN_ENV = "RUMOR_WORKER_PLAN"
WORKER_KEY_FILE = "worker-key"
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


def new_worker_key(socket_dir: str) -> str:
    """A random key only the owner and its workers can read (the directory is 0700)."""
    key = secrets.token_hex(32)
    path = os.path.join(socket_dir, WORKER_KEY_FILE)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key)
    return key


def read_worker_key(socket_dir: str) -> str:
    with open(os.path.join(socket_dir, WORKER_KEY_FILE), encoding="ascii") as handle:
        return handle.read().strip()


def _owner_titles(owner: OwnerLink, key: str) -> access.Titles:
    """Namespace titles, asked of the owner (for tokens limited by title prefix)."""
    get_namespace = owner.channel.unary_unary(
        f"/{KV_SERVICE.full_name}/GetNamespace",
        request_serializer=kv_pb2.GetNamespaceRequest.SerializeToString,
        response_deserializer=kv_pb2.Namespace.FromString,
    )

    async def title(namespace_id: str) -> str | None:
        try:
            found = await get_namespace(
                kv_pb2.GetNamespaceRequest(namespace_id=namespace_id),
                metadata=((auth.WORKER_KEY_HEADER, key),),
            )
        except grpc.aio.AioRpcError:
            return None
        return str(found.title)

    return title


def _kv_handlers(
    owner: OwnerLink,
    local: LocalReads | None,
    authorize: rpc.Authorize | None,
    budget: CallBudget,
    observe: rpc.Observe,
) -> grpc.GenericRpcHandler[Any, Any]:
    batched = WorkerKV(owner, local)
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in KV_SERVICE.methods:
        if method.name in BATCHED_KV_METHODS:
            handlers[method.name] = rpc.method_handler(
                method, getattr(batched, method.name), authorize, observe, budget
            )
        else:  # the owner checks the client's token and scopes
            handlers[method.name] = forwarding.method_handler(owner.channel, KV_SERVICE, method)
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


class WorkerSecurity(Protocol):
    """What a worker needs of the node's security (``startup.Security``)."""

    @property
    def tokens(self) -> auth.TokenChecker: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def tls(self) -> Any: ...

    @property
    def http_tls(self) -> ssl.SSLContext | None: ...

    def reload(self, reason: str) -> bool: ...

    def files_changed(self) -> bool: ...


SECURITY_POLL_S = 1.0  # as the owner: token files are checked this often for a change


async def _watch_security(security: WorkerSecurity) -> None:
    while True:
        await asyncio.sleep(SECURITY_POLL_S)
        if security.files_changed():
            security.reload("file changed")


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker checks and bounds, made by the owner's configuration.

    ``security`` holds the tokens, the audit trail and TLS; the worker reloads it
    on SIGHUP and when its files change, as the owner does, and its checks (gRPC
    and HTTP, built over its tokens) use the new set at once.
    """

    security: WorkerSecurity
    http_guard: HttpGuard | None  # its token check is ``security.tokens``'s
    max_calls: int
    read_bytes_in_flight: int
    read_admission_timeout_s: float
    uploads: UploadBudget  # the bodies this worker reads itself (its own budget)
    data_dir: str  # the owner's database, which the worker reads as a secondary


async def serve(plan: WorkerPlan, settings: WorkerSettings) -> int:
    """Serve as a worker until SIGTERM or the owner's end; returns the exit status."""
    _die_with_owner()
    structlog.contextvars.bind_contextvars(worker=plan.index)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    security = settings.security
    loop.add_signal_handler(signal.SIGHUP, security.reload, "SIGHUP")
    owner = OwnerLink(plan.socket_dir)
    metrics = RequestMetrics()
    metrics.count_uploads(settings.uploads)
    calls = CallBudget(settings.max_calls)
    titles = _owner_titles(owner, read_worker_key(plan.socket_dir))
    reads = ByteBudget(settings.read_bytes_in_flight, settings.read_admission_timeout_s)
    view = _open_view(plan, settings)
    if view is not None:
        metrics.count_view(view)
    local = None
    if view is not None:
        local = LocalReads(view, KVService(view.operations, _NO_WATCHES, reads))
    server = await _serve_grpc(plan, settings, owner, local, titles, metrics, calls)
    runner = await _serve_http(plan, settings, owner, view, reads, titles, metrics, calls)
    print(json.dumps({"event": "worker.ready", "worker": plan.index}), flush=True)
    log.info("worker.serving", grpc=plan.grpc_address, http=plan.http_address or None)
    background = [
        asyncio.create_task(_watch_owner(plan.socket_dir, stop)),
        asyncio.create_task(_watch_security(security)),
        asyncio.create_task(LoopLag(metrics.observe_loop_lag).run()),
        asyncio.create_task(_publish_metrics(metrics, plan)),
    ]
    if view is not None:
        background.append(asyncio.create_task(view.follow()))
    await stop.wait()
    for task in background:
        task.cancel()
    await server.stop(1.0)
    if runner is not None:
        await runner.cleanup()
    await owner.close()
    if view is not None:
        view.close()
    log.info("worker.stopped")
    return 0


# Watch goes to the owner whole: the view's KV service serves only reads.
_NO_WATCHES = WatchHub(lambda: 0, max_watchers=0)


def _open_view(plan: WorkerPlan, settings: WorkerSettings) -> SecondaryReads | None:
    """The worker's view of the owner's database (None: every read goes to the owner,
    as when the owner publishes no state for it)."""
    try:
        owner_state = OwnerStateView(plan.socket_dir)
    except OSError:
        return None
    directory = secondary_dir(plan.socket_dir, plan.index)
    view = SecondaryReads(settings.data_dir, directory, owner_state)
    log.info("worker.view_opened", seq=view.seq)
    return view


async def _serve_grpc(
    plan: WorkerPlan,
    settings: WorkerSettings,
    owner: OwnerLink,
    local: LocalReads | None,
    titles: access.Titles,
    metrics: RequestMetrics,
    calls: CallBudget,
) -> GrpcServer:
    security = settings.security
    kv_authorize = access.KvAccess(security.tokens, titles, security.audit)
    server = GrpcServer(reuse_port=True, health=False)  # the owner's health is the node's
    server.server.add_generic_rpc_handlers(
        (_kv_handlers(owner, local, kv_authorize, calls, metrics.observe),)
    )
    for descriptor in (REPLICATION_SERVICE, ADMIN_SERVICE, FAULTS_SERVICE, HEALTH_SERVICE):
        handlers = forwarding.service_handler(owner.channel, descriptor)
        server.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(descriptor.full_name, handlers),)
        )
    names = [d.full_name for d in (KV_SERVICE, REPLICATION_SERVICE, ADMIN_SERVICE, HEALTH_SERVICE)]
    reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), server.server)
    tls = security.tls
    server.bind(plan.grpc_address, tls.server_credentials() if tls is not None else None)
    await server.start()
    return server


async def _serve_http(
    plan: WorkerPlan,
    settings: WorkerSettings,
    owner: OwnerLink,
    view: SecondaryReads | None,
    reads: ByteBudget,
    titles: access.Titles,
    metrics: RequestMetrics,
    calls: CallBudget,
) -> web.AppRunner | None:
    """The values routes and the Workers binding answered here (plain reads from the
    view, the rest through the owner's operations, the token and its scopes checked
    here as the owner would); every other request passed to the owner's HTTP
    listener as it is."""
    if not plan.http_address:
        return None
    security = settings.security
    runner = web.AppRunner(
        build_proxy(owner_http_path(plan.socket_dir), HTTP_MAX_BODY_BYTES), access_log=None
    )
    await runner.setup()
    entry = Entry(
        ForwardedOperations(owner) if view is None else ViewedOperations(owner, view),
        reads,
        authorize=access.HttpAccess(security.tokens, titles, security.audit),
        observe=metrics.observe,
        guard=settings.http_guard or HttpGuard.for_listener(plan.http_address),
        calls=calls,
        uploads=settings.uploads,
        client_disconnected=metrics.http_client_disconnects.inc,
    )
    assert runner.server is not None
    runner.server.request_handler = _sessions_to_owner(
        entry.before_routing(runner.server.request_handler), runner.server.request_handler
    )
    host, _, port = plan.http_address.rpartition(":")
    await web.TCPSite(
        runner, host.strip("[]"), int(port), reuse_port=True, ssl_context=security.http_tls
    ).start()
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
