"""One of a node's worker processes (``--workers N``), started by its owner.

The owner hands each worker its plan (the private sockets, the client
listeners' addresses and the node's config as JSON); ``run_worker`` settles
the worker's logging, security and admission budgets from that config and
serves until the owner stops it (see ``rumor.node.server.workers``).
"""

from __future__ import annotations

import asyncio

from rumor.node import logs
from rumor.node.config import Config
from rumor.node.server.http.guard import HttpGuard
from rumor.node.server.workers import worker
from rumor.node.server.workers.worker import WorkerPlan
from rumor.node.startup import Security, event_loop_factory


def run_worker(plan: WorkerPlan) -> int:
    """Serve as one of a node's workers; returns the process exit status."""
    config = Config.from_json(plan.config)
    logs.configure(config.log_level, config.log_format)
    security = Security.load(config)
    tokens = security.tokens
    settings = worker.WorkerSettings(
        security=security,
        http_guard=HttpGuard.for_listener(
            config.http,
            advertise=config.advertise or plan.grpc_address,
            allowed_hosts=config.http_allowed_hosts,
            token_valid=tokens.http_status if tokens.enabled else None,
        )
        if config.http
        else None,
        max_calls=config.max_client_calls,
        read_bytes_in_flight=config.max_read_bytes_in_flight,
        read_admission_timeout_s=config.read_admission_timeout_ms / 1000,
        uploads=config.upload_budget(),
        data_dir=config.data_dir,
    )
    with asyncio.Runner(loop_factory=event_loop_factory(config.event_loop)) as runner:
        return runner.run(worker.serve(plan, settings))
