"""One real node per test module, with test-friendly timers."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.nodes import NodeProcess, create_namespace

_titles = itertools.count()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data_dir: Path = tmp_path_factory.mktemp("node") / "data"
    process = NodeProcess(data_dir, "--min-expiration-ttl", "1", "--sweep-interval-ms", "50")
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def ns(node: NodeProcess, request: pytest.FixtureRequest) -> str:
    """A fresh namespace for one test."""
    return create_namespace(node, f"{request.node.name}-{next(_titles)}")
