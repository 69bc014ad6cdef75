"""``--event-loop``: uvloop is optional, taken by ``auto`` only when it imports."""

from __future__ import annotations

import asyncio
import sys

import pytest

from rumor.node.config import Config
from rumor.node.startup import event_loop_factory


def test_default_is_auto() -> None:
    assert Config().event_loop == "auto"


def test_asyncio_is_asyncio_s_own_loop() -> None:
    assert event_loop_factory("asyncio") is None


def test_without_uvloop_auto_falls_back_and_uvloop_refuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # makes ``import uvloop`` fail
    assert event_loop_factory("auto") is None
    with pytest.raises(ValueError, match="uvloop package is not installed"):
        event_loop_factory("uvloop")


def test_with_uvloop_auto_and_uvloop_make_its_loop() -> None:
    uvloop = pytest.importorskip("uvloop")
    for choice in ("auto", "uvloop"):
        factory = event_loop_factory(choice)
        assert factory is not None
        loop = factory()
        try:
            assert isinstance(loop, uvloop.Loop)
            assert isinstance(loop, asyncio.AbstractEventLoop)
        finally:
            loop.close()
