"""``rumor bench NAME``: run one benchmark (or ``all``), print its figures, write JSON."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from rumor.bench.common import DEFAULT_RUNS, RESULTS_DIR, Result, report
from rumor.bench.plots import write_plots

PLOTS_DIR = Path("docs/bench")

# Benchmark name -> the module whose run(quick=, runs=) measures it.
BENCHMARKS = {
    "put-get": "rumor.bench.put_get",
    "peers": "rumor.bench.peers",
    "bulk": "rumor.bench.bulk",
    "replication": "rumor.bench.replication",
    "anti-entropy": "rumor.bench.anti_entropy",
    "restart": "rumor.bench.restart",
    "loop-steps": "rumor.bench.loop_steps",
    "join": "rumor.bench.join",
    "join-10m": "rumor.bench.join_large",
    "workers": "rumor.bench.workers",
    "watchers": "rumor.bench.watchers",
    "history": "rumor.bench.history",
    "sessions": "rumor.bench.sessions",
    "frames": "rumor.bench.frames",
}


def run_benchmark(name: str, *, quick: bool, runs: int) -> Result:
    module = importlib.import_module(BENCHMARKS[name])
    result: Result = module.run(quick=quick, runs=runs)
    return result


@click.command("bench")
@click.argument("name", type=click.Choice([*BENCHMARKS, "all", "plots"]))
@click.option("--quick", is_flag=True, help="Seconds instead of minutes: proves it runs.")
@click.option(
    "--runs",
    type=click.IntRange(1),
    default=DEFAULT_RUNS,
    show_default=True,
    help="Repetitions; figures are their medians.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=RESULTS_DIR,
    show_default=True,
    help="Directory for the JSON results.",
)
@click.option(
    "--plots",
    type=click.Path(file_okay=False, path_type=Path),
    default=PLOTS_DIR,
    show_default=True,
    help="Where `all` and `plots` draw the figures of the full results.",
)
def bench(name: str, quick: bool, runs: int, out: Path, plots: Path) -> None:
    """Run benchmark NAME against its same-run baseline (see docs/BENCHMARKS.md).

    `all` runs every benchmark and then draws the plots; `plots` only draws
    them from the JSON results already in --out.
    """
    if name == "plots":
        for path in write_plots(out, plots):
            click.echo(f"plotted {path}")
        return
    names = list(BENCHMARKS) if name == "all" else [name]
    missed = []
    for each in names:
        result = run_benchmark(each, quick=quick, runs=runs)
        report(result, out)
        missed += [f"{each}: {t.name}" for t in result.targets if not t.met]
    if missed and not quick:
        click.echo("\ntargets not met:\n  " + "\n  ".join(missed), err=True)
    if name == "all" and not quick:
        for path in write_plots(out, plots):
            click.echo(f"plotted {path}")
    sys.exit(0)
