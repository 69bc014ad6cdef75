"""The owner's side of the workers: start them, restart one that dies, stop them.

Each worker is ``python -m rumor.node`` with the owner's environment plus a
``WorkerPlan``, which carries the owner's resolved configuration. ``start``
returns once every worker printed ``worker.ready``. A worker that exits while
the node serves (a crash, a SIGKILL) is logged and started again, with a
back-off if it keeps dying; the others serve meanwhile. ``stop`` sends SIGTERM
and, after a grace period, SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys

import structlog

from rumor.node.server.workers.worker import PLAN_ENV, WorkerPlan

log = structlog.get_logger(__name__)

READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 5.0
RESTART_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)


class WorkerFailed(RuntimeError):
    """A worker did not start."""


class Supervisor:
    def __init__(
        self,
        count: int,
        socket_dir: str,
        grpc_address: str,
        http_address: str,
        config_json: str,
    ) -> None:
        self.count = count
        self._plans = [
            WorkerPlan(index, socket_dir, grpc_address, http_address, config_json)
            for index in range(count)
        ]
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False
        self.restarts = 0

    def pids(self) -> list[int]:
        return [process.pid for process in self._processes.values()]

    async def start(self) -> None:
        await asyncio.gather(*(self._spawn(plan) for plan in self._plans))
        self._watchers = [
            asyncio.create_task(self._watch(plan), name=f"worker-{plan.index}")
            for plan in self._plans
        ]

    async def _spawn(self, plan: WorkerPlan) -> None:
        env = {**os.environ, PLAN_ENV: plan.to_env()}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rumor.node",
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        self._processes[plan.index] = process
        try:
            await asyncio.wait_for(self._ready(process), READY_TIMEOUT_S)
        except (TimeoutError, WorkerFailed) as error:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise WorkerFailed(f"worker {plan.index} did not start: {error}") from error
        log.info("worker.started", worker=plan.index, pid=process.pid)

    async def _ready(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while True:
            line = await process.stdout.readline()
            if not line:
                raise WorkerFailed(f"it exited with status {await process.wait()}")
            if line.startswith(b"{") and json.loads(line).get("event") == "worker.ready":
                return

    async def _watch(self, plan: WorkerPlan) -> None:
        failures = 0
        while True:
            process = self._processes[plan.index]
            status = await process.wait()
            if self._stopping:
                return
            log.warning("worker.exited", worker=plan.index, pid=process.pid, status=status)
            await asyncio.sleep(RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)])
            if self._stopping:
                return
            try:
                await self._spawn(plan)
                self.restarts += 1
                failures = 0
            except WorkerFailed as error:
                failures += 1
                log.error("worker.restart_failed", worker=plan.index, error=str(error))

    async def stop(self) -> None:
        self._stopping = True
        for process in self._processes.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        for process in self._processes.values():
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
