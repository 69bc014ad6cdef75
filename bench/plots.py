"""Plots of the latest full results in bench/results/, for docs/BENCHMARKS.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from rumor.bench.peers import ROWS as PEERS_ROWS

# The colour of each system in the peers plot, by its rows' key prefix.
PEERS_COLOURS = {"rumor": "tab:blue", "echo": "tab:grey", "etcd": "tab:orange", "redis": "tab:red"}


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _load(results: Path, name: str) -> dict[str, Any] | None:
    path = results / f"{name}.json"
    if not path.exists():
        return None
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def put_get(document: dict[str, Any], out: Path) -> Path:
    figures, baseline = document["figures"], document["baseline"]
    labels = ["Put (fsync)", "Put (wal)", "Get"]
    rumor = [
        figures["put_fsync_requests_per_s"],
        figures["put_wal_requests_per_s"],
        figures["get_requests_per_s"],
    ]
    echo = [
        baseline["echo_put_requests_per_s"],
        baseline["echo_put_requests_per_s"],
        baseline["echo_get_requests_per_s"],
    ]
    # Through the Python SDK on the same node (no SDK run for Put under wal).
    sdk = [
        figures.get("sdk_put_fsync_requests_per_s", 0),
        0,
        figures.get("sdk_get_requests_per_s", 0),
    ]
    figure, axes = plt.subplots(figsize=(7, 4))
    positions = range(len(labels))
    axes.bar([p - 0.27 for p in positions], echo, 0.27, label="bare grpc.aio echo server")
    axes.bar(list(positions), rumor, 0.27, label="Rumor node, raw gRPC stubs")
    if any(sdk):
        axes.bar([p + 0.27 for p in positions], sdk, 0.27, label="Rumor node, Python SDK")
    axes.set_xticks(list(positions), labels)
    axes.set_ylabel("requests/s (64 in flight, 100-byte values)")
    axes.set_title("One node against the echo baseline (same run)")
    axes.legend()
    return _save(figure, out / "put_get.png")


def peers(document: dict[str, Any], out: Path) -> Path:
    """Each row's throughput and the server CPU it costs, Rumor's rows among its peers'."""
    figures = document["figures"] | document["baseline"]
    rows = [row for row in PEERS_ROWS if f"{row.key}_ops_per_s" in figures]
    labels = [f"{row.system}: {row.op}" for row in rows]
    colours = [PEERS_COLOURS[row.key.split("_")[0]] for row in rows]
    figure, (throughput, cpu) = plt.subplots(
        1, 2, figsize=(11, 0.35 * len(rows) + 1.6), sharey=True
    )
    throughput.barh(labels, [figures[f"{row.key}_ops_per_s"] for row in rows], color=colours)
    throughput.set_xscale("log")
    throughput.set_xlabel("operations/s (64 in flight, 100-byte values)")
    cpu.barh(labels, [figures[f"{row.key}_server_cpu_us_per_op"] for row in rows], color=colours)
    cpu.set_xscale("log")
    cpu.set_xlabel("server CPU µs per operation")
    throughput.invert_yaxis()
    mode = "quick run" if document["quick"] else f"median of {document['runs']} rounds"
    figure.suptitle(f"Rumor and its peers on one core, same load generator ({mode})")
    return _save(figure, out / "peers.png")


def apply_cost(document: dict[str, Any], out: Path) -> Path:
    figures = document["figures"]
    put_cpu = document["baseline"]["put_server_cpu_us"]
    prefix = "apply_cpu_us_per_record_batch_"
    sizes = sorted(int(key[len(prefix) :]) for key in figures if key.startswith(prefix))
    costs = [figures[f"{prefix}{size}"] for size in sizes]
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot(sizes, costs, marker="o", label="CPU per applied record (Push)")
    axes.axhline(put_cpu, color="tab:red", linestyle="--", label="CPU per served Put")
    axes.axhline(put_cpu * 0.10, color="tab:green", linestyle=":", label="10% of a served Put")
    axes.axvline(30, color="grey", linewidth=0.8)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("records per Push batch")
    axes.set_ylabel("node CPU, µs")
    axes.set_title("Replication apply cost against batch size")
    axes.legend()
    return _save(figure, out / "replication_apply_cost.png")


def targets(documents: list[dict[str, Any]], out: Path) -> Path:
    """Each target's measured value as a share of its limit (below 1 is good for <=)."""
    names, shares, colours = [], [], []
    for document in documents:
        for target in document["targets"]:
            limit, measured = target["limit"], target["measured"]
            share = measured / limit if target["op"] == "<=" else limit / max(measured, 1e-9)
            names.append(f"{document['name']}: {target['name']}")
            shares.append(share)
            colours.append("tab:green" if target["met"] else "tab:red")
    figure, axes = plt.subplots(figsize=(9, 0.45 * len(names) + 1.2))
    axes.barh(names, shares, color=colours)
    axes.axvline(1.0, color="black", linewidth=1)
    axes.invert_yaxis()
    axes.set_xlabel("measured / target (≤ 1 meets it)")
    axes.set_title("performance targets")
    return _save(figure, out / "targets.png")


def write_plots(results: Path, out: Path) -> list[Path]:
    """Every plot whose results exist; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    documents = {
        name: document
        for name in ("put-get", "peers", "bulk", "replication", "anti-entropy", "restart")
        if (document := _load(results, name)) is not None
    }
    if "put-get" in documents:
        written.append(put_get(documents["put-get"], out))
    if "peers" in documents:
        written.append(peers(documents["peers"], out))
    if "replication" in documents:
        written.append(apply_cost(documents["replication"], out))
    if documents:
        written.append(targets(list(documents.values()), out))
    return written
