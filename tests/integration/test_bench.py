"""Every benchmark still runs: ``rumor bench NAME --quick`` once each (no thresholds here).

The figures themselves are measured by ``make bench`` (docs/BENCHMARKS.md);
these runs only prove that each benchmark starts its processes, measures Rumor
and its baseline, and writes a complete result file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rumor.bench.cli import BENCHMARKS
from rumor.bench.peers import ROWS
from rumor.bench.peers_servers import missing_packages

RUMOR = str(Path(sys.executable).with_name("rumor"))
# Benchmarks measuring the Python SDK beside the raw stubs: a figure each must report.
SDK_BENCHMARKS = {"put-get": "sdk_put_fsync_requests_per_s", "bulk": "sdk_keys_per_s"}
# Benchmarks that need programs from outside the project, tested on their own below.
EXTERNAL = {"peers", "history"}


def quick_result(name: str, out: Path) -> tuple[str, dict[str, Any]]:
    """Run ``rumor bench NAME --quick``; its output and the result file it wrote."""
    command = [RUMOR, "bench", name, "--quick"]
    finished = subprocess.run(
        [*command, "--out", str(out)], capture_output=True, text=True, timeout=240
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert f"== {name} (quick)" in finished.stdout
    document: dict[str, Any] = json.loads((out / f"{name}-quick.json").read_text())
    return finished.stdout, document


def assert_complete(name: str, document: dict[str, Any]) -> None:
    assert document["name"] == name and document["quick"] is True
    assert document["figures"] and document["baseline"] and document["ratios"]
    assert all(isinstance(v, int | float) for v in document["ratios"].values())
    assert document["targets"], "each benchmark checks its performance targets"
    for target in document["targets"]:
        assert {"name", "measured", "op", "limit", "met"} <= set(target)
    assert document["machine"]["cores"] >= 1
    if name in SDK_BENCHMARKS:  # the same node through the raw stubs and the SDK
        assert SDK_BENCHMARKS[name] in document["figures"]
        assert any("sdk" in ratio.lower() for ratio in document["ratios"])


@pytest.mark.parametrize("name", sorted(set(BENCHMARKS) - EXTERNAL))
def test_quick_benchmark_runs_and_writes_its_result(name: str, tmp_path: Path) -> None:
    _, document = quick_result(name, tmp_path)
    assert_complete(name, document)


@pytest.mark.skipif(
    bool(missing_packages()),
    reason=f"rumor bench peers needs the packages {' '.join(missing_packages())}",
)
def test_quick_peers_benchmark_measures_every_row(tmp_path: Path) -> None:
    output, document = quick_result("peers", tmp_path)
    assert_complete("peers", document)
    figures = document["figures"] | document["baseline"]
    for row in ROWS:
        assert figures[f"{row.key}_ops_per_s"] > 0, row
        assert figures[f"{row.key}_server_cpu_us_per_op"] > 0, row
        assert row.op in output, "the table prints every row"
    assert {"rumor_sdk_get / etcd_range_serializable", "rumor_sdk_put / etcd_put"} <= set(
        document["ratios"]
    )
    assert set(document["figures"]) == {k for k in figures if k.startswith("rumor_")}


@pytest.mark.skipif(
    bool(missing_packages()),
    reason=f"rumor bench history needs the packages {' '.join(missing_packages())}",
)
def test_quick_history_benchmark_compares_with_a_fresh_node(tmp_path: Path) -> None:
    _, document = quick_result("history", tmp_path)
    assert_complete("history", document)
    assert document["figures"]["history_get_per_s"] > 0
    assert document["baseline"]["fresh_get_per_s"] > 0


def test_an_unknown_benchmark_is_refused_with_the_list() -> None:
    finished = subprocess.run(
        [RUMOR, "bench", "nonesuch"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 2
    assert "put-get" in finished.stderr and "anti-entropy" in finished.stderr
