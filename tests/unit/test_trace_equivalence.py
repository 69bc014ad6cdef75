"""The gRPC driver and the simulator hand the engine the same inputs and get the same outputs.

A small simulated cluster (joins, writes, anti-entropy, probes, group commits)
records every engine's inputs and ``ready()`` outputs. The same inputs are then
fed, in the same order and at the same times, to fresh engines driven by the
node's own gRPC driver (``rumor.node.server.driver.engine_driver.EngineDriver``) over an
in-memory transport: requests arrive through ``EngineDriver.handle`` as protobuf
(so the codec is in the loop too), answers to the driver's own calls come back
through the transport, syncs through the group-commit interface. Every
``ready()`` the driver pumps must equal the simulator's, message for message.
The driver decides nothing, so it cannot differ; this test keeps it that way.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from rumor.experiments.sim.cluster import Cluster, ClusterSettings
from rumor.experiments.sim.disk import SimulatedDisk
from rumor.experiments.sim.latency import LatencyDistribution
from rumor.experiments.sim.ledger import NAMESPACE
from rumor.experiments.sim.process import ProcessSettings, engine_for
from rumor.experiments.sim.trace import Birth, Input, Output, Trace
from rumor.node.replication.engine.engine import Engine
from rumor.node.replication.engine.messages import (
    Done,
    Failed,
    Inbound,
    Now,
    Outbound,
    Push,
    Ready,
    Reply,
    Response,
)
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.replica.replica import Durability
from rumor.node.server.driver.codec import METHOD_OF, request_to_pb
from rumor.node.server.driver.engine_driver import EngineDriver
from rumor.node.server.driver.faults import FaultRules
from rumor.node.server.snapshot.client import SnapshotFailed

SNAPSHOT_PROTOCOL = ProtocolConfig.local().replace(
    snapshot_bootstrap=True, snapshot_min_records=5, snapshot_hold_ms=3000
)


def simulated_trace(protocol: ProtocolConfig | None = None, joiner_at_ms: int = 0) -> Trace:
    """Three nodes, writes and a delete; with ``joiner_at_ms``, a fourth node joins then
    (by snapshot, under ``SNAPSHOT_PROTOCOL``) and the run goes on for the copy to land."""
    settings = ClusterSettings(
        ProcessSettings(protocol or ProtocolConfig.local(), Durability.FSYNC),
        LatencyDistribution.parse("uniform:1:3"),
    )
    cluster = Cluster(settings, random.Random(7), trace=True)
    loop = cluster.loop

    def start(slot: int, seeds: tuple[int, ...] = ()) -> Callable[[], None]:
        def happen() -> None:
            cluster.start(slot, seeds)

        return happen

    def write(slot: int, key: bytes, *, tombstone: bool = False) -> Callable[[], None]:
        def happen() -> None:
            cluster.write(slot, key, b"" if tombstone else b"v" + key, tombstone=tombstone)

        return happen

    loop.at(0, start(0))
    loop.at(5, start(1, (0,)))
    loop.at(9, start(2, (0, 1)))
    for index in range(12):
        loop.at(400 + 37 * index, write(index % 3, b"key-%02d" % index))
    loop.at(700, write(1, b"key-03", tombstone=True))
    if joiner_at_ms:
        loop.at(joiner_at_ms, start(3, (0,)))
        loop.at(joiner_at_ms + 100, write(2, b"key-02", tombstone=True))
    loop.run_until(1600 + 2 * joiner_at_ms)
    assert cluster.trace is not None
    return cluster.trace


class _Clock:
    def __init__(self) -> None:
        self.now = Now(0, 0)

    def wall_ms(self) -> int:
        return self.now.wall_ms


class _InMemoryTransport:
    """The driver's calls wait here until the script answers them."""

    def __init__(self) -> None:
        self.calls: dict[int, asyncio.Future[Response | Failed]] = {}

    async def call(self, outbound: Outbound) -> Response | Failed:
        future: asyncio.Future[Response | Failed] = asyncio.get_running_loop().create_future()
        self.calls[outbound.message_id] = future
        return await future

    async def close(self) -> None:
        self.calls.clear()


class _ScriptedCommit:
    """Group commit whose syncs finish when the script says (the simulator's disk did),
    reported to the driver's hook as the real one reports them."""

    def __init__(self, engine: Engine, synced: Callable[[int], None]) -> None:
        self.engine = engine
        self.report = synced
        self.waiting: list[tuple[int, asyncio.Future[None]]] = []

    async def durable(self, ticket: int) -> None:
        if self.engine.replica.is_durable(ticket):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((ticket, future))
        await future

    def synced(self, ticket: int) -> None:
        """The simulated disk's sync covered every write up to ``ticket``."""
        self.report(ticket)
        still = []
        for wanted, future in self.waiting:
            if wanted <= ticket:
                future.set_result(None)
            else:
                still.append((wanted, future))
        self.waiting = still


class _DrivenProcess:
    def __init__(self, birth: Birth, protocol: ProtocolConfig, disk: SimulatedDisk) -> None:
        settings = ProcessSettings(protocol, Durability.FSYNC)
        self.engine = engine_for(birth, settings, disk)
        self.clock = _Clock()
        self.transport = _InMemoryTransport()
        self.outputs: list[Ready] = []
        original = self.engine.ready

        def recorded() -> Ready:
            ready = original()
            self.outputs.append(ready)
            return ready

        self.engine.ready = recorded  # type: ignore[method-assign]
        self.driver = EngineDriver(
            self.engine,
            self.transport,
            lambda synced: _ScriptedCommit(self.engine, synced),  # type: ignore[arg-type, return-value]
            self.clock,  # type: ignore[arg-type]
            faults=FaultRules(),
            on_stop=lambda message, kind: None,
            now=lambda: self.clock.now,
            download_snapshot=self.download,
        )
        self.commit: _ScriptedCommit = self.driver.commit  # type: ignore[assignment]
        self.handling: list[asyncio.Task[Any]] = []
        self.fetch: asyncio.Future[None] | None = None

    async def download(self, address: str) -> object:
        """A download that ends when the script says (the simulator's copy arrived)."""
        self.fetch = asyncio.get_running_loop().create_future()
        await self.fetch
        return None

    def snapshot_done(self, done: Done) -> None:
        assert self.fetch is not None
        if done.snapshot_fetched:
            self.fetch.set_result(None)
        else:
            self.fetch.set_exception(SnapshotFailed(done.snapshot_failed))


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def drive(trace: Trace, protocol: ProtocolConfig | None = None) -> dict[int, list[Ready]]:
    processes: dict[int, _DrivenProcess] = {}
    births = {birth.process: birth for birth in trace.births}
    for event in trace.inputs:
        if event.kind == "birth":
            process = processes[event.process] = _DrivenProcess(
                births[event.process],
                protocol or ProtocolConfig.local(),
                trace.disks_at_birth[event.process].copy(),
            )
            process.clock.now = event.now
            process.driver.pump()
            continue
        process = processes[event.process]
        process.clock.now = event.now
        payload = event.payload
        if event.kind == "tick":
            process.driver.tick_once()
        elif event.kind == "propose":
            assert isinstance(payload, tuple)
            process.driver.propose(payload)
        elif event.kind == "step" and isinstance(payload, Inbound):
            method = METHOD_OF[type(payload.body)]
            request = request_to_pb(payload.envelope, payload.body)
            process.handling.append(asyncio.ensure_future(process.driver.handle(method, request)))
        elif event.kind == "step":
            assert isinstance(payload, Response)
            process.transport.calls.pop(payload.message_id).set_result(payload)
        else:
            assert isinstance(payload, Done)
            if payload.snapshot_fetched or payload.snapshot_failed:
                process.snapshot_done(payload)
            if payload.synced_ticket:
                process.commit.synced(payload.synced_ticket)
            for failure in payload.failed:
                process.transport.calls.pop(failure.message_id).set_result(failure)
        await _settle()
    for process in processes.values():
        for task in process.handling:
            task.cancel()
        await process.driver.stop()
    return {serial: process.outputs for serial, process in processes.items()}


def _normalised(ready: Ready, tokens: dict[int, int]) -> Ready:
    """Reply tokens are the driver's own; number them in order of appearance."""
    replies = [
        Reply(tokens.setdefault(reply.token, len(tokens)), reply.envelope, reply.body)
        for reply in ready.replies
    ]
    return replace(ready, replies=replies)


def test_the_grpc_driver_gives_the_engine_what_the_simulator_gives_it() -> None:
    trace = simulated_trace()
    _assert_equivalent(trace)


def test_a_join_by_snapshot_is_driven_alike() -> None:
    """The snapshot fetch, its Done and the restart on the installed copy, both drivers."""
    trace = simulated_trace(SNAPSHOT_PROTOCOL, joiner_at_ms=900)
    dones = [e.payload for e in trace.inputs if isinstance(e.payload, Done)]
    assert any(done.snapshot_fetched for done in dones), "no copy was fetched"
    assert len(trace.births) == 5  # the joiner was born again on its installed copy
    _assert_equivalent(trace, SNAPSHOT_PROTOCOL)


def _assert_equivalent(trace: Trace, protocol: ProtocolConfig | None = None) -> None:
    simulated: dict[int, list[Ready]] = {}
    for event in trace.events:
        if isinstance(event, Output):
            simulated.setdefault(event.process, []).append(event.ready)
    inputs = [event for event in trace.events if isinstance(event, Input)]
    assert sum(1 for event in inputs if event.kind == "propose") >= 12
    assert any(isinstance(event.payload, Inbound) for event in inputs)
    driven = asyncio.run(drive(trace, protocol))
    assert driven.keys() == simulated.keys()
    for serial, outputs in simulated.items():
        sim_tokens: dict[int, int] = {}
        grpc_tokens: dict[int, int] = {}
        expected = [_normalised(ready, sim_tokens) for ready in outputs]
        got = [_normalised(ready, grpc_tokens) for ready in driven[serial]]
        assert len(got) == len(expected), f"process {serial}: {len(got)} vs {len(expected)}"
        for index, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
            assert mine == theirs, f"process {serial}, ready #{index} differs"
    # The run did something worth comparing: records travelled and were applied.
    assert any(ready.messages for outputs in simulated.values() for ready in outputs)


def test_the_simulated_writes_reached_every_node() -> None:
    """The script above is a real run: the writes spread (so the comparison covers pushes)."""
    trace = simulated_trace()
    pushed = [
        record
        for event in trace.outputs
        for outbound in event.ready.messages
        if isinstance(outbound.body, Push)
        for record in outbound.body.records
    ]
    assert any(record.namespace == NAMESPACE for record in pushed)
