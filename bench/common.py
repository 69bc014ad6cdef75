"""What every benchmark shares: pinned node processes, medians, targets and result files.

A benchmark measures Rumor and a baseline in the same run on the same machine
(so every target is a ratio against something measured next to it), repeats each
measurement (median of five by default, one in ``--quick`` mode), checks its
figures against Rumor's performance targets (listed in docs/BENCHMARKS.md) and
writes one JSON file to the results directory.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc

from rumor.experiments.lab.processes import NodeProcess, poll
from rumor.v1 import admin_pb2, admin_pb2_grpc, kv_pb2

NODE_CORE = 0
CLIENT_CORE = 1
DEFAULT_RUNS = 5
BULK_PAIRS = 10_000  # the most a BulkPut takes
RESULTS_DIR = Path("bench/results")
DATA_ROOT = Path(".rumor/bench-data")  # data directories built once, reused by every run
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Target:
    """One figure Rumor promises: ``measured`` must be ``op`` ``limit``."""

    name: str
    measured: float
    op: str  # ">=" or "<="
    limit: float
    unit: str = ""

    @property
    def met(self) -> bool:
        return self.measured >= self.limit if self.op == ">=" else self.measured <= self.limit


@dataclass
class Result:
    """A benchmark's outcome: what it measured, against what, and the targets."""

    name: str
    quick: bool
    runs: int
    figures: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["targets"] = [{**asdict(t), "met": t.met} for t in self.targets]
        document["machine"] = machine()
        document["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return document


def machine() -> dict[str, Any]:
    """The machine the figures were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = 0.0
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gib = round(pages / 2**30, 1)
    except (OSError, ValueError):
        pass
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "rocksdict": _version("rocksdict"),
        "protobuf": _version("protobuf"),
        "pinned": can_pin(),
    }


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def can_pin() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pin_prefix(core: int) -> list[str]:
    """A command prefix that runs a process on ``core`` (nothing where taskset is missing)."""
    return ["taskset", "-c", str(core)] if can_pin() else []


def pin_self(core: int | None) -> None:
    """Run this process on ``core`` only (None: on every core again)."""
    if can_pin():
        os.sched_setaffinity(0, {core} if core is not None else set(range(os.cpu_count() or 1)))


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return float(ordered[min(len(ordered) - 1, int(len(ordered) * share))])


def medians(samples: Sequence[dict[str, float]]) -> dict[str, float]:
    """The per-figure median of several runs' figures."""
    return {key: round(median([s[key] for s in samples]), 3) for key in samples[0]}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def quiet(pid: int, *, idle_share: float = 0.05, timeout_s: float = 15.0) -> None:
    """Wait until the process uses under ``idle_share`` of a core over 0.2 s (RocksDB's
    flushes and compactions of what the previous phase wrote are over), at most
    ``timeout_s``: two phases on one node then each pay for their own writes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        await asyncio.sleep(0.2)
        if cpu_seconds(pid) - before < idle_share * 0.2:
            return


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pid_of(node: NodeProcess) -> int:
    assert node.process is not None
    return node.process.pid


def node_flags(durability: str = "fsync") -> list[str]:
    return ["--durability", durability, "--log-level", "warning"]


def start_node(data_dir: Path, *args: str, core: int | None = NODE_CORE) -> NodeProcess:
    """A real node on 127.0.0.1, pinned to ``core`` (None: not pinned)."""
    prefix = pin_prefix(core) if core is not None else []
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    return NodeProcess(data_dir, *args, prefix=prefix).start(timeout=120)


def start_cluster(
    root: Path, size: int, *args: str, cores: Sequence[int | None]
) -> list[NodeProcess]:
    """``size`` nodes; the first starts the cluster, the others join through it."""
    nodes: list[NodeProcess] = []
    try:
        for index in range(size):
            seeds = ("--seeds", nodes[0].address) if nodes else ()
            name = f"n{index + 1}"
            nodes.append(
                start_node(
                    root / name, *args, "--name", name, *seeds, core=cores[index % len(cores)]
                )
            )
        poll(lambda: all(status(n).ready for n in nodes), timeout=60)
    except BaseException:
        for node in nodes:
            node.kill()
        raise
    return nodes


def status(node: NodeProcess) -> admin_pb2.StatusResponse:
    stub = admin_pb2_grpc.AdminStub(node.channel)  # type: ignore[no-untyped-call]
    response: admin_pb2.StatusResponse = stub.Status(admin_pb2.StatusRequest(), timeout=30)
    return response


@contextmanager
def scratch_dir(name: str) -> Iterator[Path]:
    """A temporary directory on the same file system as the results (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix=f"rumor-bench-{name}-") as tmp:
        yield Path(tmp)


def bulk_put(node: NodeProcess, namespace: str, keys: list[bytes], value: bytes) -> None:
    """Write ``keys`` (all with ``value``) through ``node`` in BulkPuts of 10,000."""
    for start in range(0, len(keys), BULK_PAIRS):
        items = [
            kv_pb2.PutRequest(key=key, value=value) for key in keys[start : start + BULK_PAIRS]
        ]
        node.kv.BulkPut(kv_pb2.BulkPutRequest(namespace_id=namespace, items=items), timeout=300)


def start_process(
    command: list[str], core: int | None
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start a helper process that prints one JSON line when ready; return it and that line."""
    prefix = pin_prefix(core) if core is not None else []
    process = subprocess.Popen([*prefix, sys.executable, *command], stdout=subprocess.PIPE)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(10)
        raise RuntimeError(f"{command[:3]} exited with {process.returncode} before it was ready")
    ready: dict[str, Any] = json.loads(line)
    return process, ready


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


def report(result: Result, out_dir: Path) -> Path:
    """Print the figures, ratios and targets; write ``<out_dir>/<name>.json``."""
    mode = "quick" if result.quick else f"median of {result.runs}"
    print(f"\n== {result.name} ({mode})")
    for title, figures in (("measured", result.figures), ("baseline", result.baseline)):
        for key, value in figures.items():
            print(f"  {title:9} {key:42} {_show(value)}")
    for key, ratio in result.ratios.items():
        print(f"  {'ratio':9} {key:42} {ratio:.3f}")
    for target in result.targets:
        verdict = "met" if target.met else "NOT MET"
        print(
            f"  {'target':9} {target.name:42} {_show(target.measured)} {target.unit}"
            f" {target.op} {_show(target.limit)}: {verdict}"
        )
    for note in result.notes:
        print(f"  note: {note}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result.name}{'-quick' if result.quick else ''}.json"
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    print(f"  written to {path}")
    return path


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def built_once(name: str, write: Callable[[NodeProcess, str], None]) -> tuple[Path, str]:
    """A node's data directory under ``DATA_ROOT/name``, built once: a node started on it,
    a namespace created, ``write(node, namespace)``, the node stopped. Later calls reuse
    it. Returns the directory and the namespace."""
    root = DATA_ROOT / name
    done = root / "namespace.json"
    if done.exists():
        return root / "data", json.loads(done.read_text())["namespace"]
    shutil.rmtree(root, ignore_errors=True)
    node = start_node(root / "data", *node_flags())
    try:
        namespace: str = node.kv.CreateNamespace(kv_pb2.CreateNamespaceRequest(title=name)).id
        write(node, namespace)
    finally:
        node.stop(timeout=300)
    done.write_text(json.dumps({"namespace": namespace}))
    return root / "data", namespace
