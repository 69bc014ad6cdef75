"""Every Python example in docs/sdk.md runs, against a real node, as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.nodes import NodeProcess

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_the_document_has_examples() -> None:
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_example_runs(node: NodeProcess, index: int) -> None:
    source = EXAMPLES[index].replace("127.0.0.1:7401", node.address)
    # Titles must be unique per node, so each example's titles get its index.
    for title in set(re.findall(r'"([A-Z][A-Z0-9-]*(?:-v2)?)"', source)):
        source = source.replace(f'"{title}"', f'"{title}-{index}"')
    exec(compile(source, f"docs/sdk.md example {index + 1}", "exec"), {"__name__": "__doc__"})
