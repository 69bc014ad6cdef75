"""Shutdown steps: a slow one is named in the log (while it runs and when it ends); they
run in the reverse of the order they were registered, each deciding at stop time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest
from structlog.testing import capture_logs

from rumor.node import shutdown


def test_a_slow_shutdown_step_is_named_while_it_runs_and_when_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutdown, "SLOW_STOP_STEP_S", 0.01)
    with capture_logs() as logs:
        asyncio.run(shutdown.timed("leave", asyncio.sleep(0.1)))
        asyncio.run(shutdown.timed("grpc", asyncio.sleep(0)))
    slow = [(e["step"], e["done"]) for e in logs if e["event"] == "node.stop_slow"]
    assert slow == [("leave", False), ("leave", True)]


def test_stop_steps_run_in_reverse_and_decide_at_stop_time_whether_to_run() -> None:
    done: list[str] = []
    leaves = [True]

    def step(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            done.append(name)

        return run

    async def serve_and_stop() -> None:
        async with contextlib.AsyncExitStack() as stack:
            for name in ("driver", "grpc"):
                shutdown.on_stop(stack, name, step(name))
            shutdown.on_stop(stack, "leave", step("leave"), when=lambda: leaves[0])
            shutdown.on_stop(stack, "health", step("health"))
            leaves[0] = False  # e.g. the cluster removed this node while it served

    asyncio.run(serve_and_stop())
    assert done == ["health", "grpc", "driver"]
