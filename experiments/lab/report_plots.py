"""The report's PNG plots: the t-visibility CDF per node, the replication lag, and the
session guarantees with and without sessions (when the run had moving clients).

matplotlib's object API (``Figure`` rendered by Agg), never pyplot, so
plotting needs no display and keeps no global state.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from rumor.experiments.lab.checkers import NS_PER_MS, NS_PER_S
from rumor.experiments.lab.history import History, run_origin_ns
from rumor.experiments.lab.visibility import VisibilityStats
from rumor.experiments.properties.session_guarantees import Guarantee


def plot_visibility_cdf(path: Path, stats: VisibilityStats, title: str) -> Path:
    """One step CDF per node: share of all acknowledged writes visible within x ms."""
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.add_subplot()
    total = stats.total
    plotted = False
    for node in stats.nodes:
        delays = stats.delays_ms(node)
        if not delays or not total:
            continue
        shares = [(index + 1) / total for index in range(len(delays))]
        axes.step([0.0, *delays], [0.0, *shares], where="post", label=node)
        plotted = True
    if plotted:
        axes.set_xscale("symlog", linthresh=1.0)
        axes.legend(loc="lower right", title="node")
    else:
        axes.text(0.5, 0.5, "no acknowledged writes seen", ha="center", transform=axes.transAxes)
    axes.set_ylim(0.0, 1.02)
    axes.set_xlabel("time after acknowledgement (ms, symlog)")
    axes.set_ylabel("share of acknowledged writes visible")
    axes.set_title(f"{title}: t-visibility per node")
    axes.grid(True, which="both", alpha=0.3)
    figure.savefig(path, dpi=110)
    return path


def plot_replication_lag(path: Path, history: History, stats: VisibilityStats, title: str) -> Path:
    """Time to full replication of each write against its ack time, fault windows shaded."""
    figure = Figure(figsize=(10, 5), layout="constrained")
    axes = figure.add_subplot()
    origin_ns = run_origin_ns(history)
    done_x: list[float] = []
    done_y: list[float] = []
    never_x: list[float] = []
    for write in stats.writes:
        at_s = (write.ack.acked_ns - origin_ns) / NS_PER_S
        if write.full_ns is None:
            never_x.append(at_s)
        else:
            done_x.append(at_s)
            done_y.append(write.full_ns / NS_PER_MS)
    if done_x:
        axes.scatter(done_x, done_y, s=6, alpha=0.6, label="time to full replication")
    ceiling = max(done_y, default=1.0) * 1.5 or 1.0
    if never_x:
        axes.scatter(
            never_x,
            [ceiling] * len(never_x),
            s=14,
            marker="x",
            color="tab:red",
            label="never on every node",
        )
    colours = ["tab:orange", "tab:purple", "tab:green", "tab:brown", "tab:pink", "tab:olive"]
    colour_of: dict[str, str] = {}
    for fault in history.faults:
        start_s = (fault.start_ns - origin_ns) / NS_PER_S
        end_s = (max(fault.end_ns, fault.start_ns) - origin_ns) / NS_PER_S
        first = fault.kind not in colour_of
        colour = colour_of.setdefault(fault.kind, colours[len(colour_of) % len(colours)])
        axes.axvspan(
            start_s,
            end_s,
            color=colour,
            alpha=0.15,
            label=f"fault: {fault.kind}" if first else None,
        )
        label = fault.kind if not fault.detail else f"{fault.kind} {fault.detail}"
        axes.text(
            start_s,
            0.98,
            label,
            transform=axes.get_xaxis_transform(),
            rotation=90,
            va="top",
            ha="left",
            fontsize=7,
            color=colour,
        )
    if history.healed_ns:
        axes.axvline(
            (history.healed_ns - origin_ns) / NS_PER_S,
            color="black",
            linestyle="--",
            linewidth=0.8,
            label="heal",
        )
    if not stats.writes:
        axes.text(0.5, 0.5, "no acknowledged writes", ha="center", transform=axes.transAxes)
    axes.set_yscale("symlog", linthresh=1.0)
    axes.set_ylim(bottom=0.0)
    axes.set_xlabel("acknowledged at (s since start)")
    axes.set_ylabel("time to full replication (ms, symlog)")
    axes.set_title(f"{title}: replication lag over time")
    axes.grid(True, which="both", alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    figure.savefig(path, dpi=110)
    return path


def plot_session_guarantees(path: Path, figures: dict[str, dict[str, int]], title: str) -> Path:
    """Violations per guarantee, per 1,000 calls, for clients with and without sessions."""
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.add_subplot()
    guarantees = [g.value for g in Guarantee]
    width = 0.38
    for offset, (label, group) in enumerate(
        (("with sessions", figures["with_sessions"]), ("without", figures["without_sessions"]))
    ):
        calls = max(1, group["calls"])
        rates = [1000 * group[g] / calls for g in guarantees]
        positions = [index + (offset - 0.5) * width for index in range(len(guarantees))]
        bars = axes.bar(positions, rates, width, label=f"{label} ({group['calls']} calls)")
        axes.bar_label(bars, labels=[str(group[g]) for g in guarantees], fontsize=8)
    axes.set_xticks(range(len(guarantees)), guarantees)
    axes.set_ylabel("violations per 1,000 calls (bars: count)")
    axes.set_title(f"{title}: session guarantees of clients that move between nodes")
    axes.legend(loc="upper right")
    axes.grid(True, axis="y", alpha=0.3)
    figure.savefig(path, dpi=110)
    return path
