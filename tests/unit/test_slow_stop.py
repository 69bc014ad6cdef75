"""A shutdown step that is slow is named in the log, while it runs and when it ends."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from rumor.node import app


def test_a_slow_shutdown_step_is_named_while_it_runs_and_when_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(app, "SLOW_STOP_STEP_S", 0.01)
    with capture_logs() as logs:
        asyncio.run(app._timed("leave", asyncio.sleep(0.1)))
        asyncio.run(app._timed("grpc", asyncio.sleep(0)))
    slow = [(e["step"], e["done"]) for e in logs if e["event"] == "node.stop_slow"]
    assert slow == [("leave", False), ("leave", True)]
