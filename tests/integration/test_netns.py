"""A real partition through network namespaces: every checker passes, nothing is left behind."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rumor.experiments.lab import checkers, harness, netns
from rumor.experiments.lab.scenario import load


def test_netns_partition_passes_every_checker(tmp_path: Path) -> None:
    reason = netns.available()
    if reason is not None:
        pytest.skip(f"real partitions need network namespaces: {reason}")
    scenario = load("netns_partition")
    assert scenario.network == "netns"
    messages: list[str] = []
    started = time.monotonic()
    try:
        history, skipped = harness.run(scenario, tmp_path, say=messages.append)
    finally:
        leftovers = netns.namespaces() + netns.links()
    assert time.monotonic() - started < 40, messages
    assert leftovers == [], leftovers
    assert skipped == [], skipped
    assert [f.kind for f in history.faults] == ["isolate"], history.faults

    verdicts = checkers.check_all(history, scenario.converge_bound_s)
    assert all(v.ok for v in verdicts), [(v.line(), v.details[:5]) for v in verdicts]

    # The cut was real: writes n1 acknowledged well inside the window reached n2
    # only after the reconnect.
    window = history.faults[0]
    inside = {
        (a.origin, a.seq)
        for a in history.acks
        if a.node == "n1" and window.start_ns + 1e9 < a.started_ns < window.end_ns - 1e9
    }
    assert inside, "n1 acknowledged nothing while isolated"
    seen_on_n2 = [
        e.applied_ns for e in history.applied if e.node == "n2" and (e.origin, e.seq) in inside
    ]
    assert seen_on_n2 and min(seen_on_n2) >= window.end_ns - 0.2e9
