"""Scenarios: an experiment described in TOML (experiments/lab/scenarios/*.toml).

    name = "partition"
    description = "Symmetric partition of one node, then heal."
    nodes = 3
    seed = 1
    duration_s = 20            # workload time; faults happen inside it
    converge_bound_s = 30      # convergence checker: digests equal within this after heal
    node_args = ["--anti-entropy-interval-ms", "200"]
    network = "loopback"       # or "netns": one network namespace per node (needs root)

    [workload]
    rate = 100                 # operations per second, all nodes together
    keys = 200                 # key space (small: conflicts happen)
    value_bytes = 64
    mix = { read = 0.2, write = 0.7, delete = 0.1 }
    ttl_share = 0.05           # share of writes with expiration_ttl
    ttl_s = 2
    writers = "all"            # or a list of node indexes, e.g. [0]

    [moving_clients]           # optional: clients that pick a random node per call
    count = 8                  # half of them in a session (even numbers), half not
    keys = 20                  # their own small key space, shared among them
    think_ms = 20              # between one client's calls
    mix = { read = 0.5, write = 0.4, delete = 0.1 }

    [[faults]]
    at_s = 5
    action = "partition"       # see ACTIONS
    groups = [[0], [1, 2]]
    [[faults]]
    at_s = 12
    action = "heal"

Actions start a fault of one of ``LAB_FAULTS`` (the shared
:class:`~rumor.experiments.faults.FaultKind` vocabulary) or end faults
(``Recovery``): partition (groups), block (node, direction
both|outbound|inbound), loss (drop, delay_fraction, delay_ms), skew (node,
offset_ms; 0 clears it), crash (node: SIGKILL), pause (node: SIGSTOP),
faketime (node, offset_s: restart the node under libfaketime; skipped with a
message when faketime is not installed), isolate (node: cut it off from every
other node; a real cut with network = "netns", else Faults Block of that
node); restart (node: after a crash), resume (node), reconnect (node: undo
isolate), heal (clears every Faults rule and clock offset, restarts crashed,
resumes paused and reconnects isolated nodes). Earlier spellings are still
accepted: ``clock_offset`` for skew, ``kill`` for crash, ``oneway`` for block.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from rumor.experiments.faults import FaultKind

#: The faults a scenario can start on real nodes.
LAB_FAULTS: tuple[FaultKind, ...] = (
    FaultKind.PARTITION,
    FaultKind.BLOCK,
    FaultKind.LOSS,
    FaultKind.SKEW,
    FaultKind.CRASH,
    FaultKind.PAUSE,
    FaultKind.FAKETIME,
    FaultKind.ISOLATE,
)


class Recovery(StrEnum):
    """Actions that end faults rather than start one."""

    RESTART = "restart"  # a crashed node, on the same data dir and port
    RESUME = "resume"  # a paused node
    RECONNECT = "reconnect"  # an isolated node
    HEAL = "heal"  # every fault at once


Action = FaultKind | Recovery
ACTIONS: tuple[Action, ...] = (*LAB_FAULTS, *Recovery)
NETWORKS = ("loopback", "netns")


def parse_action(text: str) -> Action:
    """An action from its name or an earlier spelling (``FaultKind.parse``)."""
    if text in {recovery.value for recovery in Recovery}:
        return Recovery(text)
    try:
        kind: FaultKind | None = FaultKind.parse(text)
    except ValueError:
        kind = None
    if kind is None or kind not in LAB_FAULTS:
        known = ", ".join(action.value for action in ACTIONS)
        raise ValueError(f"unknown fault action {text!r}; use one of {known}")
    return kind


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Workload:
    rate: float = 100.0
    keys: int = 200
    value_bytes: int = 64
    read: float = 0.2
    write: float = 0.7
    delete: float = 0.1
    ttl_share: float = 0.0
    ttl_s: int = 2
    writers: tuple[int, ...] | None = None  # None: every node


@dataclass(frozen=True, slots=True)
class MovingClients:
    """Clients that pick a random node per call, one call at a time: the session checker's
    history. Clients with an even number use a session, the others do not."""

    count: int = 0
    keys: int = 20
    think_ms: float = 20.0
    read: float = 0.5
    write: float = 0.4
    delete: float = 0.1


@dataclass(frozen=True, slots=True)
class FaultStep:
    at_s: float
    action: Action
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str = ""
    nodes: int = 3
    seed: int = 1
    duration_s: float = 20.0
    converge_bound_s: float = 30.0
    node_args: tuple[str, ...] = ()
    workload: Workload = field(default_factory=Workload)
    faults: tuple[FaultStep, ...] = ()
    network: str = "loopback"
    moving: MovingClients = field(default_factory=MovingClients)

    @classmethod
    def from_toml(cls, text: str, source: str = "scenario") -> Scenario:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{source} is not valid TOML: {exc}") from exc
        try:
            workload_raw = dict(raw.get("workload", {}))
            mix = workload_raw.pop("mix", {})
            writers = workload_raw.pop("writers", "all")
            workload = Workload(
                **workload_raw,
                read=float(mix.get("read", 0.2)),
                write=float(mix.get("write", 0.7)),
                delete=float(mix.get("delete", 0.1)),
                writers=None if writers == "all" else tuple(int(w) for w in writers),
            )
            moving_raw = dict(raw.get("moving_clients", {}))
            moving_mix = moving_raw.pop("mix", {})
            moving = MovingClients(
                **moving_raw,
                read=float(moving_mix.get("read", 0.5)),
                write=float(moving_mix.get("write", 0.4)),
                delete=float(moving_mix.get("delete", 0.1)),
            )
            faults = []
            for entry in raw.get("faults", []):
                params = dict(entry)
                at_s = float(params.pop("at_s"))
                try:
                    action = parse_action(str(params.pop("action")))
                except ValueError as exc:
                    raise ScenarioError(f"{source}: {exc}") from exc
                faults.append(FaultStep(at_s, action, params))
            scenario = cls(
                name=str(raw["name"]),
                description=str(raw.get("description", "")),
                nodes=int(raw.get("nodes", 3)),
                seed=int(raw.get("seed", 1)),
                duration_s=float(raw.get("duration_s", 20)),
                converge_bound_s=float(raw.get("converge_bound_s", 30)),
                node_args=tuple(str(a) for a in raw.get("node_args", [])),
                workload=workload,
                faults=tuple(sorted(faults, key=lambda f: f.at_s)),
                network=str(raw.get("network", "loopback")),
                moving=moving,
            )
        except ScenarioError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ScenarioError(f"{source}: {exc!r}") from exc
        if scenario.network not in NETWORKS:
            raise ScenarioError(
                f"{source}: unknown network {scenario.network!r}; use one of {', '.join(NETWORKS)}"
            )
        for step in scenario.faults:
            for key in ("node",):
                if key in step.params and not 0 <= int(step.params[key]) < scenario.nodes:
                    raise ScenarioError(
                        f"{source}: fault at {step.at_s} s names node "
                        f"{step.params[key]}, but there are {scenario.nodes}"
                    )
        return scenario


def bundled() -> dict[str, Path]:
    """The scenarios shipped in experiments/lab/scenarios/, by name (file stem)."""
    folder = resources.files("rumor.experiments.lab") / "scenarios"
    return {
        Path(str(entry)).stem: Path(str(entry))
        for entry in folder.iterdir()
        if str(entry).endswith(".toml")
    }


def load(name_or_path: str) -> Scenario:
    path = Path(name_or_path)
    if not path.exists():
        known = bundled()
        if name_or_path not in known:
            raise ScenarioError(f"no scenario {name_or_path!r}; known: {', '.join(sorted(known))}")
        path = known[name_or_path]
    return Scenario.from_toml(path.read_text(), str(path))
