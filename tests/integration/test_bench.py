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

import pytest

from rumor.bench.cli import BENCHMARKS

RUMOR = str(Path(sys.executable).with_name("rumor"))
# Benchmarks measuring the Python SDK beside the raw stubs: a figure each must report.
SDK_BENCHMARKS = {"put-get": "sdk_put_fsync_requests_per_s", "bulk": "sdk_keys_per_s"}


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_quick_benchmark_runs_and_writes_its_result(name: str, tmp_path: Path) -> None:
    command = [RUMOR, "bench", name, "--quick"]
    finished = subprocess.run(
        [*command, "--out", str(tmp_path)], capture_output=True, text=True, timeout=240
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert f"== {name} (quick)" in finished.stdout
    document = json.loads((tmp_path / f"{name}-quick.json").read_text())
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


def test_an_unknown_benchmark_is_refused_with_the_list() -> None:
    finished = subprocess.run(
        [RUMOR, "bench", "nonesuch"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 2
    assert "put-get" in finished.stderr and "anti-entropy" in finished.stderr
