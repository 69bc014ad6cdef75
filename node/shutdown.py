"""A node's stop, step by step: each part registers a named, timed step on the exit stack
as it is made, so the stop is the setup in reverse; a step slower than
``SLOW_STOP_STEP_S`` is named in the log while it runs (with where every task waits)
and when it ends."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

SLOW_STOP_STEP_S = 1.0  # a shutdown step slower than this is logged, by name


async def timed(step: str, work: Awaitable[object]) -> None:
    """Await one shutdown step, saying which one is slow: once it has taken
    ``SLOW_STOP_STEP_S`` (so a stop that hangs says where) and when it is done."""
    started = time.monotonic()
    warning = asyncio.get_running_loop().call_later(
        SLOW_STOP_STEP_S,
        lambda: log.warning("node.stop_slow", step=step, done=False, awaiting=_awaiting()),
    )
    try:
        await work
    finally:
        warning.cancel()
    seconds = time.monotonic() - started
    if seconds > SLOW_STOP_STEP_S:
        log.warning("node.stop_slow", step=step, done=True, seconds=round(seconds, 2))


def on_stop(
    stack: contextlib.AsyncExitStack,
    step: str,
    stop: Callable[[], Awaitable[object]],
    when: Callable[[], bool] = lambda: True,
) -> None:
    """Register a named, timed shutdown step; ``when`` decides at stop time whether it runs."""

    async def step_timed() -> None:
        if when():
            await timed(step, stop())

    stack.push_async_callback(step_timed)


async def cancelled(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait until it is over."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _awaiting() -> list[str]:
    """Where each task of the loop waits (its innermost frame): what a hang waits on."""
    places = []
    for task in asyncio.all_tasks():
        frames = task.get_stack()
        if frames:
            frame = frames[-1]
            code = frame.f_code
            places.append(f"{task.get_name()}: {code.co_qualname} line {frame.f_lineno}")
    return sorted(places)
