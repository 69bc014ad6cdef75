"""The report of one experiment: summary.json, CSVs, report.md and PNG plots.

:func:`write_report` turns a history, the checkers' verdicts and the
visibility statistics into files in one directory, so a run can be read by a
human (report.md and its plots), by a program (summary.json) and by a
spreadsheet or pandas (the CSVs):

``summary.json``
    The scenario, every verdict (details capped), and the key figures: counts,
    convergence time, t-visibility at 10, 50 and 100 ms per node (and at every
    threshold), time-to-full-replication percentiles, writes never seen.
``acks.csv``
    One row per acknowledged write, times relative to the start of the run.
``visibility.csv``
    One row per acknowledged write and node: the delay from the
    acknowledgement to the node applying it (empty: never).
``replication.csv``
    One row per acknowledged write: its time to full replication (empty: never).
``applied.csv``
    Every Watch event of every node.
``report.md``
    The human summary, linking the plots.
``visibility_cdf.png``
    One CDF of visibility delay per node; the curve of a node that never saw
    some writes stays below 1.
``replication_lag.png``
    Time to full replication of each write against its acknowledgement time,
    with the fault windows shaded, so the lag a partition causes is visible
    where it happens.
``session_guarantees.png``
    With moving clients only: violations of each session guarantee per 1,000
    calls, for the clients in a session and for the others.

The plots are drawn by ``report_plots``.
Values are not written to the CSVs (only their lengths): the history dump has them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rumor.experiments.lab.checkers import (
    NS_PER_MS,
    NS_PER_S,
    Verdict,
    convergence_time_s,
    node_names,
    session_figures,
)
from rumor.experiments.lab.history import History, run_origin_ns
from rumor.experiments.lab.report_plots import (
    plot_replication_lag,
    plot_session_guarantees,
    plot_visibility_cdf,
)
from rumor.experiments.lab.visibility import Percentiles, VisibilityStats, percentiles_ms

#: The t-visibility thresholds (ms) summary.json and report.md single out.
HEADLINE_T_MS: tuple[int, ...] = (10, 50, 100)

#: Detail lines per verdict kept in summary.json and shown in report.md.
JSON_DETAILS = 100
MARKDOWN_DETAILS = 20

SUMMARY_JSON = "summary.json"
ACKS_CSV = "acks.csv"
VISIBILITY_CSV = "visibility.csv"
REPLICATION_CSV = "replication.csv"
APPLIED_CSV = "applied.csv"
REPORT_MD = "report.md"
VISIBILITY_CDF_PNG = "visibility_cdf.png"
REPLICATION_LAG_PNG = "replication_lag.png"
SESSION_GUARANTEES_PNG = "session_guarantees.png"


def write_report(
    history: History,
    verdicts: Sequence[Verdict],
    stats: VisibilityStats,
    out_dir: Path | str,
    title: str,
    scenario: dict[str, Any],
) -> list[Path]:
    """Write every report file into ``out_dir`` (created if needed); return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = build_summary(history, verdicts, stats, title, scenario)
    origin_ns = run_origin_ns(history)
    written = [
        _write_json(out / SUMMARY_JSON, summary),
        _write_acks_csv(out / ACKS_CSV, history, origin_ns),
        _write_visibility_csv(out / VISIBILITY_CSV, stats, origin_ns),
        _write_replication_csv(out / REPLICATION_CSV, stats, origin_ns),
        _write_applied_csv(out / APPLIED_CSV, history, origin_ns),
        _write_markdown(out / REPORT_MD, summary, verdicts, stats, history),
        plot_visibility_cdf(out / VISIBILITY_CDF_PNG, stats, title),
        plot_replication_lag(out / REPLICATION_LAG_PNG, history, stats, title),
    ]
    if summary["figures"]["sessions"] is not None:
        figures = summary["figures"]["sessions"]
        written.append(plot_session_guarantees(out / SESSION_GUARANTEES_PNG, figures, title))
    return written


# ---------------------------------------------------------------------------
# Figures


def _percentiles_json(percentiles: Percentiles | None) -> dict[str, float | int] | None:
    return None if percentiles is None else asdict(percentiles)


def build_summary(
    history: History,
    verdicts: Sequence[Verdict],
    stats: VisibilityStats,
    title: str,
    scenario: dict[str, Any],
) -> dict[str, Any]:
    """The content of summary.json (a JSON-ready dict)."""
    nodes = node_names(history)
    origin_ns = run_origin_ns(history)
    curve = stats.t_visibility
    counts = {
        "nodes": len(nodes),
        "acknowledged_writes": len(history.acks),
        "acknowledged_puts": sum(1 for ack in history.acks if not ack.deleted),
        "acknowledged_deletes": sum(1 for ack in history.acks if ack.deleted),
        "failed_or_indeterminate_writes": len(history.attempts),
        "keys": len({ack.key for ack in history.acks} | {a.key for a in history.attempts}),
        "watch_events": len(history.applied),
        "held_records": len(history.held),
        "fault_windows": len(history.faults),
    }
    return {
        "title": title,
        "scenario": scenario,
        "ok": all(verdict.ok for verdict in verdicts),
        "verdicts": [
            {
                "name": verdict.name,
                "ok": verdict.ok,
                "summary": verdict.summary,
                "line": verdict.line(),
                "details": verdict.details[:JSON_DETAILS],
                "details_total": len(verdict.details),
            }
            for verdict in verdicts
        ],
        "figures": {
            "counts": counts,
            "convergence_s": convergence_time_s(history),
            "converged": history.converged_ns is not None,
            "t_visibility": {
                node: {str(t_ms): stats.share_visible(node, t_ms) for t_ms in HEADLINE_T_MS}
                for node in stats.nodes
            },
            "t_visibility_curve": {
                node: {str(t_ms): share for t_ms, share in by_t.items()}
                for node, by_t in curve.items()
            },
            "full_replication_ms": _percentiles_json(stats.full_replication),
            "never_fully_replicated": stats.never_fully_replicated,
            "never_seen": stats.never_seen,
            "ack_latency_ms": _percentiles_json(
                percentiles_ms(ack.acked_ns - ack.started_ns for ack in history.acks)
            ),
            # Moving clients, with and without sessions (None: the run had none).
            "sessions": session_figures(history) if history.moving else None,
        },
        "faults": [
            {
                "kind": fault.kind,
                "detail": fault.detail,
                "start_s": (fault.start_ns - origin_ns) / NS_PER_S,
                "end_s": (fault.end_ns - origin_ns) / NS_PER_S,
            }
            for fault in history.faults
        ],
        "final_digests": {node: f"{digest:016x}" for node, digest in history.final_digests.items()},
    }


# ---------------------------------------------------------------------------
# Files


def _write_json(path: Path, content: dict[str, Any]) -> Path:
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False, default=str) + "\n")
    return path


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _ms(duration_ns: int | None) -> str:
    return "" if duration_ns is None else f"{duration_ns / NS_PER_MS:.3f}"


def _optional(value: object | None) -> object:
    return "" if value is None else value


def _write_acks_csv(path: Path, history: History, origin_ns: int) -> Path:
    header = [
        "op",
        "node",
        "key",
        "deleted",
        "value_len",
        "expiration",
        "hlc",
        "origin",
        "seq",
        "started_ms",
        "acked_ms",
        "latency_ms",
    ]
    rows = (
        [
            ack.op,
            ack.node,
            ack.key,
            int(ack.deleted),
            _optional(None if ack.value is None else len(ack.value)),
            _optional(ack.expiration),
            ack.hlc,
            f"{ack.origin:x}",
            ack.seq,
            _ms(ack.started_ns - origin_ns),
            _ms(ack.acked_ns - origin_ns),
            _ms(ack.acked_ns - ack.started_ns),
        ]
        for ack in history.acks
    )
    return _write_csv(path, header, rows)


def _write_visibility_csv(path: Path, stats: VisibilityStats, origin_ns: int) -> Path:
    header = ["op", "key", "hlc", "origin", "accepted_by", "acked_ms", "node", "delay_ms"]
    rows = (
        [
            write.ack.op,
            write.ack.key,
            write.ack.hlc,
            f"{write.ack.origin:x}",
            write.ack.node,
            _ms(write.ack.acked_ns - origin_ns),
            node,
            _ms(write.delays_ns.get(node)),
        ]
        for write in stats.writes
        for node in stats.nodes
    )
    return _write_csv(path, header, rows)


def _write_replication_csv(path: Path, stats: VisibilityStats, origin_ns: int) -> Path:
    header = ["op", "key", "hlc", "origin", "accepted_by", "acked_ms", "full_replication_ms"]
    rows = (
        [
            write.ack.op,
            write.ack.key,
            write.ack.hlc,
            f"{write.ack.origin:x}",
            write.ack.node,
            _ms(write.ack.acked_ns - origin_ns),
            _ms(write.full_ns),
        ]
        for write in stats.writes
    )
    return _write_csv(path, header, rows)


def _write_applied_csv(path: Path, history: History, origin_ns: int) -> Path:
    header = ["node", "key", "hlc", "origin", "seq", "deleted", "expiration", "applied_ms"]
    rows = (
        [
            event.node,
            event.key,
            event.hlc,
            f"{event.origin:x}",
            event.seq,
            int(event.deleted),
            _optional(event.expiration),
            _ms(event.applied_ns - origin_ns),
        ]
        for event in history.applied
    )
    return _write_csv(path, header, rows)


def _fmt_share(share: float) -> str:
    return f"{share * 100:.1f}%"


def _fmt_ms(value: float) -> str:
    return f"{value:.1f} ms"


def _escape_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _session_lines(sessions: dict[str, dict[str, int]]) -> list[str]:
    """The moving clients' table: violations per guarantee, with and without sessions."""
    columns = [key for key in sessions["with_sessions"] if key not in ("calls", "reads")]
    lines = ["### Session guarantees of clients that move between nodes", ""]
    lines.append(
        "Each moving client picks a random node per call; half keep a session. Violations"
        " per guarantee (per key), and calls a node could not answer (a session read"
        " waits at most 1 s for the node to catch up, then fails rather than read older data)."
    )
    lines += ["", "| clients | calls | reads | " + " | ".join(columns) + " |"]
    lines.append("|---|---|---|" + "---|" * len(columns))
    for label, group in sessions.items():
        cells = " | ".join(str(group[column]) for column in columns)
        lines.append(
            f"| {label.replace('_', ' ')} | {group['calls']} | {group['reads']} | {cells} |"
        )
    lines.append("")
    return lines


def _write_markdown(
    path: Path,
    summary: dict[str, Any],
    verdicts: Sequence[Verdict],
    stats: VisibilityStats,
    history: History,
) -> Path:
    figures: dict[str, Any] = summary["figures"]
    lines: list[str] = [f"# {summary['title']}", ""]
    verdict_word = "all checkers passed" if summary["ok"] else "SOME CHECKERS FAILED"
    lines += [f"**Result: {verdict_word}.**", ""]

    lines += ["## Scenario", "", "```json", json.dumps(summary["scenario"], indent=2, default=str)]
    lines += ["```", ""]

    lines += ["## Verdicts", "", "| checker | verdict | summary |", "|---|---|---|"]
    for verdict in verdicts:
        mark = "✔ pass" if verdict.ok else "✘ FAIL"
        lines.append(f"| {verdict.name} | {mark} | {_escape_cell(verdict.summary)} |")
    lines.append("")
    for verdict in verdicts:
        if verdict.ok or not verdict.details:
            continue
        lines += [f"### {verdict.name}: evidence", ""]
        lines += [f"- {detail}" for detail in verdict.details[:MARKDOWN_DETAILS]]
        if len(verdict.details) > MARKDOWN_DETAILS:
            lines.append(f"- … {len(verdict.details) - MARKDOWN_DETAILS} more in {SUMMARY_JSON}")
        lines.append("")

    counts: dict[str, int] = figures["counts"]
    lines += ["## Figures", "", "| count | value |", "|---|---|"]
    lines += [f"| {name.replace('_', ' ')} | {value} |" for name, value in counts.items()]
    lines.append("")

    convergence_s = figures["convergence_s"]
    if convergence_s is None:
        lines += ["Convergence: the digests did not become equal within the bound.", ""]
    else:
        lines += [f"Convergence: equal digests on every node {convergence_s:.3f} s after the heal."]
        lines.append("")

    lines += ["### t-visibility", ""]
    lines.append(
        "Share of acknowledged writes a node had applied (or a newer version of the key) "
        "within t of the acknowledgement (Bailis et al., PBS)."
    )
    lines.append("")
    lines.append("| node | " + " | ".join(f"{t} ms" for t in stats.thresholds_ms) + " | never |")
    lines.append("|---|" + "---|" * (len(stats.thresholds_ms) + 1))
    never_seen = stats.never_seen
    for node, by_t in stats.t_visibility.items():
        cells = " | ".join(_fmt_share(by_t[t]) for t in stats.thresholds_ms)
        lines.append(f"| {node} | {cells} | {never_seen[node]} |")
    lines.append("")

    lines += ["### Time to full replication", ""]
    full = stats.full_replication
    if full is None:
        lines.append("No write reached every node.")
    else:
        lines += ["| writes | p50 | p90 | p99 | max |", "|---|---|---|---|---|"]
        lines.append(
            f"| {full.count} | {_fmt_ms(full.p50_ms)} | {_fmt_ms(full.p90_ms)} | "
            f"{_fmt_ms(full.p99_ms)} | {_fmt_ms(full.max_ms)} |"
        )
    lines += ["", f"Writes never applied by every node: {stats.never_fully_replicated}.", ""]

    if summary["faults"]:
        lines += ["### Fault windows", "", "| kind | from | to | detail |", "|---|---|---|---|"]
        for fault in summary["faults"]:
            lines.append(
                f"| {fault['kind']} | {fault['start_s']:.3f} s | {fault['end_s']:.3f} s "
                f"| {_escape_cell(fault['detail'])} |"
            )
        lines.append("")

    sessions = figures["sessions"]
    if sessions is not None:
        lines += _session_lines(sessions)

    lines += [
        "## Plots",
        "",
        f"![visibility CDF per node]({VISIBILITY_CDF_PNG})",
        "",
        f"![replication lag over time]({REPLICATION_LAG_PNG})",
        "",
    ]
    if sessions is not None:
        lines += [f"![session guarantees]({SESSION_GUARANTEES_PNG})", ""]
    lines += [
        "## Files",
        "",
    ]
    for name in (SUMMARY_JSON, ACKS_CSV, VISIBILITY_CSV, REPLICATION_CSV, APPLIED_CSV):
        lines.append(f"- [{name}]({name})")
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
