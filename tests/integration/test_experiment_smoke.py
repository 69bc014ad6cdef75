"""The short seeded scenario (3 nodes: partition, SIGKILL, clock skew) passes every checker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rumor.experiments.lab.scenario import bundled, load

BIN = Path(sys.executable).parent


def test_every_bundled_scenario_parses() -> None:
    names = set(bundled())
    assert {
        "steady",
        "partition",
        "oneway",
        "crash_restart",
        "skew_fence",
        "skew_warn",
        "loss",
        "smoke",
    } <= names
    for name in names:
        scenario = load(name)
        assert scenario.nodes >= 3 and scenario.description


def test_smoke_scenario_passes_every_checker(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "rumor"), "experiment", "run", "smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    verdicts = [line for line in result.stdout.splitlines() if line[:1] in ("✔", "✘")]
    assert len(verdicts) == 4, result.stdout
    assert "t-visibility" in result.stdout
    assert all(line.startswith("✔") for line in verdicts), result.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary
    for name in ("report.md", "visibility_cdf.png", "replication_lag.png", "history.json"):
        assert (tmp_path / name).stat().st_size > 0, name
