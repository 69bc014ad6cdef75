"""The experiment report (rumor.experiments.lab.report.write_report).

A small history with a fault window and one write that never reaches a node:
the report writes every file, summary.json parses and carries the figures
computed by hand (t-visibility per node, full-replication percentiles,
convergence time, counts, verdicts), the CSVs have one row per write (per
node), report.md shows the verdicts and links the plots, the plots are PNGs.
An empty history still gives a complete report.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from rumor.experiments.lab.checkers import check_all
from rumor.experiments.lab.history import Ack, Applied, FaultWindow, Held, History
from rumor.experiments.lab.report import write_report
from rumor.experiments.lab.visibility import visibility

MS = 1_000_000
S = 1_000_000_000
START_NS = 7 * S
NODES = ["n1", "n2"]
ORIGIN = {"n1": 0x11, "n2": 0x22}
EXPECTED_FILES = {
    "summary.json",
    "acks.csv",
    "visibility.csv",
    "replication.csv",
    "applied.csv",
    "report.md",
    "visibility_cdf.png",
    "replication_lag.png",
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def ack(key: str, hlc: int, node: str, acked_ms: int, op: int) -> Ack:
    return Ack(
        op=op,
        node=node,
        key=key,
        deleted=False,
        value="v" * hlc,
        expiration=None,
        hlc=hlc,
        origin=ORIGIN[node],
        seq=op,
        started_ns=START_NS + (acked_ms - 1) * MS,
        acked_ns=START_NS + acked_ms * MS,
    )


def applied(node: str, write: Ack, at_ms: int) -> Applied:
    return Applied(
        node=node,
        key=write.key,
        hlc=write.hlc,
        origin=write.origin,
        seq=write.seq,
        deleted=False,
        expiration=None,
        applied_ns=START_NS + at_ms * MS,
    )


def held(node: str, write: Ack) -> Held:
    return Held(
        node=node,
        key=write.key,
        hlc=write.hlc,
        origin=write.origin,
        seq=write.seq,
        deleted=False,
        expiration=None,
    )


def small_history() -> History:
    # a: n2 sees it 8 ms after the ack. b: 40 ms. c (during the partition): never on n2.
    a = ack("a", 10, "n1", 100, 1)
    b = ack("b", 20, "n2", 200, 2)
    c = ack("c", 30, "n1", 1500, 3)
    return History(
        nodes=list(NODES),
        acks=[a, b, c],
        attempts=[],
        applied=[
            applied("n1", a, 99),
            applied("n2", a, 108),
            applied("n2", b, 199),
            applied("n1", b, 240),
            applied("n1", c, 1499),
        ],
        held=[held("n1", a), held("n2", a), held("n1", b), held("n2", b), held("n1", c)],
        faults=[FaultWindow("partition", START_NS + 1 * S, START_NS + 2 * S, "n1 | n2")],
        final_digests={"n1": 1, "n2": 2},
        started_ns=START_NS,
        healed_ns=START_NS + 2 * S,
        converged_ns=None,
        end_wall_s=1_700_000_000.0,
    )


def test_report_writes_every_file_with_the_expected_figures(tmp_path: Path) -> None:
    hist = small_history()
    verdicts = check_all(hist, bound_s=5)
    stats = visibility(hist)
    out = tmp_path / "run"
    paths = write_report(hist, verdicts, stats, out, "partition test", {"nodes": 2, "seed": 7})

    assert {path.name for path in paths} == EXPECTED_FILES
    assert all(path.parent == out and path.stat().st_size > 0 for path in paths)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["title"] == "partition test"
    assert summary["scenario"] == {"nodes": 2, "seed": 7}
    assert summary["ok"] is False
    by_name = {v["name"]: v for v in summary["verdicts"]}
    assert set(by_name) == {"lost-writes", "convergence", "lww", "no-resurrection"}
    assert by_name["lost-writes"]["ok"] is False
    assert by_name["lost-writes"]["summary"].startswith("1 of 3 acknowledged writes lost")
    assert by_name["convergence"]["ok"] is False
    assert by_name["no-resurrection"]["ok"] is True
    assert by_name["lost-writes"]["line"].startswith("✘ lost-writes: ")

    figures = summary["figures"]
    assert figures["t_visibility"] == {
        "n1": {"10": 2 / 3, "50": 1.0, "100": 1.0},
        "n2": {"10": 2 / 3, "50": 2 / 3, "100": 2 / 3},
    }
    assert figures["t_visibility_curve"]["n2"]["0"] == 1 / 3
    assert figures["full_replication_ms"] == {
        "count": 2,
        "p50_ms": 8.0,
        "p90_ms": 40.0,
        "p99_ms": 40.0,
        "max_ms": 40.0,
    }
    assert figures["never_fully_replicated"] == 1
    assert figures["never_seen"] == {"n1": 0, "n2": 1}
    assert figures["convergence_s"] is None
    assert figures["converged"] is False
    assert figures["counts"]["acknowledged_writes"] == 3
    assert figures["counts"]["watch_events"] == 5
    assert figures["counts"]["fault_windows"] == 1
    assert figures["ack_latency_ms"]["p50_ms"] == 1.0
    assert summary["faults"] == [
        {"kind": "partition", "detail": "n1 | n2", "start_s": 1.0, "end_s": 2.0}
    ]

    with (out / "visibility.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * 2
    c_on_n2 = next(row for row in rows if row["op"] == "3" and row["node"] == "n2")
    assert c_on_n2["delay_ms"] == ""
    b_on_n1 = next(row for row in rows if row["op"] == "2" and row["node"] == "n1")
    assert float(b_on_n1["delay_ms"]) == 40.0
    with (out / "acks.csv").open(newline="") as handle:
        acks = list(csv.DictReader(handle))
    assert [row["key"] for row in acks] == ["a", "b", "c"]
    assert float(acks[2]["acked_ms"]) == 1500.0
    with (out / "replication.csv").open(newline="") as handle:
        assert [row["full_replication_ms"] for row in csv.DictReader(handle)] == [
            "8.000",
            "40.000",
            "",
        ]
    with (out / "applied.csv").open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 5

    markdown = (out / "report.md").read_text()
    assert markdown.startswith("# partition test")
    assert "| lost-writes | ✘ FAIL |" in markdown
    assert "| no-resurrection | ✔ pass |" in markdown
    assert "![visibility CDF per node](visibility_cdf.png)" in markdown
    assert "![replication lag over time](replication_lag.png)" in markdown
    assert "### lost-writes: evidence" in markdown
    assert "| partition | 1.000 s | 2.000 s |" in markdown

    for name in ("visibility_cdf.png", "replication_lag.png"):
        assert (out / name).read_bytes().startswith(PNG_MAGIC)


def test_report_of_an_empty_history_is_complete(tmp_path: Path) -> None:
    hist = History(nodes=["n1"], final_digests={"n1": 5}, converged_ns=0)
    paths = write_report(hist, check_all(hist), visibility(hist), tmp_path, "empty", {})
    assert {path.name for path in paths} == EXPECTED_FILES
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["ok"] is True
    assert summary["figures"]["full_replication_ms"] is None
    assert summary["figures"]["convergence_s"] == 0.0
