"""`rumor experiment list|run` and `rumor simulate`, contributed through rumor.cli."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import click

from rumor.experiments.lab import checkers, harness, report, visibility
from rumor.experiments.lab.scenario import ScenarioError, bundled, load
from rumor.experiments.sim import fuzz
from rumor.experiments.sim import scale as simulator
from rumor.node.replication.engine.canaries import Canary


class ExperimentError(click.ClickException):
    def show(self, file: Any = None) -> None:
        click.echo(f"✘ {self.format_message()}", err=True)


@click.group("experiment")
def experiment() -> None:
    """Consistency experiments on real nodes: faults, checkers, reports."""


@experiment.command("list")
def list_scenarios() -> None:
    """The bundled scenarios (experiments/lab/scenarios/*.toml)."""
    for name, path in sorted(bundled().items()):
        scenario = load(str(path))
        click.echo(
            f"{name:15} {scenario.nodes} nodes, {scenario.duration_s:g} s  {scenario.description}"
        )


@experiment.command("run")
@click.argument("scenario")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to write summary.json, CSVs, report.md and plots"
    " (default: experiments-out/SCENARIO-TIME).",
)
@click.option("--seed", type=int, default=None, help="Override the scenario's seed.")
def run_experiment(scenario: str, out: str | None, seed: int | None) -> None:
    """Run SCENARIO (a bundled name or a TOML file); one verdict line per checker."""
    try:
        chosen = load(scenario)
    except ScenarioError as exc:
        raise ExperimentError(str(exc)) from None
    if seed is not None:
        chosen = replace(chosen, seed=seed)
    out_dir = Path(out or f"experiments-out/{chosen.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    out_dir.mkdir(parents=True, exist_ok=True)
    click.echo(f"Running {chosen.name} (seed {chosen.seed}): {chosen.description}")
    with tempfile.TemporaryDirectory(prefix="rumor-experiment-") as work:
        history, skipped = harness.run(chosen, Path(work), say=click.echo)
    history.dump(out_dir / "history.json")
    verdicts = checkers.check_all(history, bound_s=chosen.converge_bound_s)
    stats = visibility.visibility(history)
    scenario_info = {**asdict(chosen), "skipped": skipped}
    report.write_report(history, verdicts, stats, out_dir, chosen.name, scenario_info)
    for verdict in verdicts:
        click.echo(verdict.line())
    click.echo(_figures(stats))
    for message in skipped:
        click.echo(f"- skipped: {message}")
    click.echo(f"Report: {out_dir / 'report.md'}")
    if not all(v.ok for v in verdicts):
        sys.exit(1)


def _figures(stats: visibility.VisibilityStats) -> str:
    """One line of key figures: t-visibility at 10/50/100 ms per node, full replication."""
    shares = stats.t_visibility
    parts = [
        f"{node} " + "/".join(f"{shares[node].get(t, 0.0):.0%}" for t in (10, 50, 100))
        for node in stats.nodes
    ]
    full = stats.full_replication
    tail = (
        f"; full replication p50 {full.p50_ms:.1f} ms, p99 {full.p99_ms:.1f} ms"
        if full is not None
        else ""
    )
    return "  t-visibility at 10/50/100 ms: " + ", ".join(parts) + tail


def _sweep_spec(text: str) -> tuple[str, list[int | float]]:
    name, _, values = text.partition("=")
    known = {f.name for f in fields(simulator.SimulationConfig)}
    if name not in known or not values:
        raise click.BadParameter(
            f"use FIELD=V1,V2,... with FIELD one of {', '.join(sorted(known))}"
        )
    parsed: list[int | float] = [float(v) if "." in v else int(v) for v in values.split(",")]
    return name, parsed


@click.command("simulate")
@click.option("--nodes", default=100, show_default=True)
@click.option("--fanout", default=simulator.SimulationConfig.fanout, show_default=True)
@click.option(
    "--gossip-interval-ms", default=simulator.SimulationConfig.gossip_interval_ms, show_default=True
)
@click.option(
    "--anti-entropy-interval-ms",
    default=simulator.SimulationConfig.anti_entropy_interval_ms,
    show_default=True,
)
@click.option("--loss", default=0.0, show_default=True, help="Share of messages lost.")
@click.option(
    "--latency-ms",
    default="uniform:1:5",
    show_default=True,
    help="fixed:N | uniform:A:B | exp:MEAN | normal:MEAN:SD",
)
@click.option("--writes", default=100, show_default=True)
@click.option(
    "--write-interval-ms",
    default=simulator.SimulationConfig.write_interval_ms,
    show_default=True,
    help="Virtual time between two writes (each at a random node).",
)
@click.option("--seed", default=1, show_default=True)
@click.option("--sweep", default=None, help="FIELD=V1,V2,... e.g. nodes=10,100,1000")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Write results JSON (and the sweep plot) here; with --fuzz, failing schedules.",
)
@click.option("--fuzz", "fuzz_count", type=int, default=None, help="Run N random fault schedules.")
@click.option(
    "--durability",
    type=click.Choice(["fsync", "wal"]),
    default="fsync",
    show_default=True,
    help="With --fuzz: the nodes' durability mode.",
)
@click.option(
    "--canary",
    "canaries",
    multiple=True,
    type=click.Choice([canary.value for canary in Canary]),
    help="With --fuzz: switch a fixed bug back on (the fuzz must find it).",
)
@click.option("--no-shrink", is_flag=True, help="With --fuzz: do not shrink failing schedules.")
@click.option(
    "--jobs",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="With --fuzz: processes to share the schedules (the same schedules and failures"
    " with any number; failures are told at the end).",
)
@click.option(
    "--session-clients",
    type=int,
    default=0,
    show_default=True,
    help="With --fuzz: clients per schedule that move between nodes in a session (checked"
    " against the session guarantees).",
)
@click.option(
    "--replay",
    "replay_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Run a saved schedule again and check it.",
)
def simulate(
    nodes: int,
    fanout: int,
    gossip_interval_ms: int,
    anti_entropy_interval_ms: int,
    loss: float,
    latency_ms: str,
    writes: int,
    write_interval_ms: int,
    seed: int,
    sweep: str | None,
    out: str | None,
    fuzz_count: int | None,
    durability: str,
    canaries: tuple[str, ...],
    no_shrink: bool,
    jobs: int,
    session_clients: int,
    replay_file: str | None,
) -> None:
    """The real engine on virtual time: write latency at scale, or fuzz and replay faults."""
    if replay_file is not None:
        _replay(Path(replay_file))
        return
    if fuzz_count is not None:
        _fuzz(
            fuzz_count,
            seed,
            durability,
            canaries,
            Path(out or "simulation-failures"),
            no_shrink,
            session_clients,
            jobs,
        )
        return
    try:
        config = simulator.SimulationConfig(
            nodes=nodes,
            fanout=fanout,
            gossip_interval_ms=gossip_interval_ms,
            anti_entropy_interval_ms=anti_entropy_interval_ms,
            loss=loss,
            latency_ms=latency_ms,
            writes=writes,
            write_interval_ms=write_interval_ms,
            seed=seed,
        )
        if sweep:
            field, values = _sweep_spec(sweep)
            results = simulator.sweep(config, field, values)
        else:
            results = [simulator.run(config)]
    except ValueError as exc:
        raise ExperimentError(str(exc)) from None
    click.echo(simulator.format_table(results))
    if out:
        out_dir = Path(out)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "simulation.json").write_text(
            json.dumps([asdict(r) for r in results], default=str, indent=2)
        )
        if sweep:
            simulator.plot_sweep(results, out_dir / "sweep.png")
        click.echo(f"Wrote {out_dir}")


def _fuzz(
    count: int,
    seed: int,
    durability: str,
    canaries: tuple[str, ...],
    out: Path,
    no_shrink: bool,
    session_clients: int = 0,
    jobs: int = 1,
) -> None:
    result = fuzz.fuzz_in_parallel(
        count,
        seed,
        jobs,
        durability=durability,
        canaries=tuple(Canary(name) for name in canaries),
        out=out,
        shrink_failures=not no_shrink,
        session_clients=session_clients,
        say=click.echo,
    )
    reported = ", ".join(f"{name} {n}" for name, n in sorted(result.reported.items()) if n)
    click.echo(
        f"{result.schedules} schedules ({durability}), {result.acknowledged:,} acknowledged"
        f" writes, {len(result.failures)} failed, {result.wall_s:.1f} s"
        + (f"; reported, not asserted: {reported}" if reported else "")
    )
    click.echo(
        f"joins by snapshot: {result.snapshot_joins} in {result.with_snapshot} schedules"
        f" ({result.snapshot_failures} fetches failed and fell back to anti-entropy)"
    )
    click.echo(
        f"member lifecycle: {result.retired} members retired by a timeout,"
        f" {result.probe_mismatches:,} probes answered under another id,"
        f" {result.rejoins} nodes rejoined as new"
    )
    if result.failures:
        raise ExperimentError(f"{len(result.failures)} schedule(s) broke an invariant")


def _replay(path: Path) -> None:
    schedule, outcome = fuzz.replay(path)
    click.echo(
        f"{path}: {len(schedule.nodes)} nodes, {len(schedule.faults)} faults,"
        f" {len(schedule.writes)} writes ({schedule.durability})"
    )
    click.echo(outcome.summary())
    if outcome.failed:
        raise ExperimentError("the schedule broke an invariant")
