"""The inputs an engine was given and the outputs it handed back, in order.

A ``Trace`` is a script: each process's birth (what its engine was built
from), then every ``step``, ``tick``, ``propose`` and ``advance`` with the
time it was given, and every ``ready()`` it answered. ``replay`` feeds a
script's inputs into freshly built engines and collects their ``ready()``
outputs, so two drivers (the simulator, the gRPC driver over an in-memory
transport) can be held to the same sequence for the same inputs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rumor.experiments.sim.disk import SimulatedDisk
from rumor.node.replication.engine.engine import Engine
from rumor.node.replication.engine.messages import Done, Inbound, Now, Ready, Response
from rumor.node.replication.replica.replica import Write


@dataclass(frozen=True, slots=True)
class Birth:
    """Everything an engine was built from (the disk as it was at the start)."""

    process: int
    address: str
    name: str
    node_id: int  # used only if the disk holds none
    boot_nonce: int
    seeds: tuple[str, ...]
    rng_seed: int
    now: Now
    disk: SimulatedDisk


@dataclass(frozen=True, slots=True)
class Input:
    process: int
    now: Now
    kind: str  # "birth" | "step" | "tick" | "propose" | "advance"
    payload: Inbound | Response | tuple[Write, ...] | Done | None = None


@dataclass(frozen=True, slots=True)
class Output:
    process: int
    ready: Ready


@dataclass(slots=True)
class Trace:
    births: list[Birth] = field(default_factory=list)
    events: list[Input | Output] = field(default_factory=list)
    # What each disk held when its process was born (a birth's disk changes later).
    disks_at_birth: dict[int, SimulatedDisk] = field(default_factory=dict)

    @property
    def inputs(self) -> list[Input]:
        return [event for event in self.events if isinstance(event, Input)]

    @property
    def outputs(self) -> list[Output]:
        return [event for event in self.events if isinstance(event, Output)]


EngineBuilder = Callable[[Birth, random.Random], Engine]


def replay(trace: Trace, build: EngineBuilder) -> list[Output]:
    """Feed ``trace``'s inputs to engines made by ``build``; their ``ready()`` after each."""
    engines: dict[int, Engine] = {}
    births = {birth.process: birth for birth in trace.births}
    outputs: list[Output] = []
    for event in trace.events:
        if not isinstance(event, Input):
            continue
        if event.kind == "birth":
            birth = births[event.process]
            engine = engines[event.process] = build(birth, random.Random(birth.rng_seed))
        else:
            engine = engines[event.process]
            apply_input(engine, event)
        outputs.append(Output(event.process, engine.ready()))
    return outputs


def apply_input(engine: Engine, event: Input) -> None:
    payload = event.payload
    if event.kind == "step":
        assert isinstance(payload, Inbound | Response)
        engine.step(payload, event.now)
    elif event.kind == "tick":
        engine.tick(event.now)
    elif event.kind == "propose":
        assert isinstance(payload, tuple)
        writes: Sequence[Write] = payload
        engine.propose(writes, event.now)
    else:
        assert isinstance(payload, Done)
        engine.advance(payload, event.now)
