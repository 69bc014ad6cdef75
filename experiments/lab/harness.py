"""The experiment harness: real nodes, a workload, a fault schedule, and a history.

``run(scenario, work_dir)`` starts ``scenario.nodes`` real node processes on
127.0.0.1 (protocol timers in milliseconds, fault injection on), opens a Watch
stream on every node, runs the workload at its rate while a scheduler applies
the faults at their times, then heals everything (Faults cleared, killed nodes
restarted, paused nodes resumed), waits until every node reports the same
audit digest, reads every node's records (tombstones included) and stops the
nodes. Everything observed goes into a ``History`` for the checkers.

With ``network = "netns"`` every node runs in its own network namespace
(``experiments/lab/netns.py``) listening on ``<its address>:7401``; the harness
reaches them through the bridge, and ``isolate``/``reconnect`` cut a node off
for real. Without root or ``ip netns`` the run falls back to loopback and the
Faults service, and says so in ``skipped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import structlog

from rumor.client import AsyncClient
from rumor.client.errors import RumorError
from rumor.experiments.faults import FaultKind
from rumor.experiments.lab import netns
from rumor.experiments.lab.history import Ack, Applied, Attempt, FaultWindow, Held, History
from rumor.experiments.lab.moving_clients import MovingClients
from rumor.experiments.lab.processes import NodeProcess, poll
from rumor.experiments.lab.scenario import Action, FaultStep, Recovery, Scenario
from rumor.v1 import admin_pb2, faults_pb2

log = structlog.get_logger(__name__)

EXPERIMENT_NODE_ARGS = (
    "--gossip-interval-ms",
    "10",
    "--anti-entropy-interval-ms",
    "200",
    "--probe-interval-ms",
    "200",
    "--probe-timeout-ms",
    "200",
    "--suspicion-timeout-ms",
    "1000",
    "--gc-grace-ms",
    "1000",
    "--min-expiration-ttl",
    "1",
    "--min-replicas-timeout-ms",
    "1000",
    "--enable-fault-injection",
    "--log-level",
    "warning",
)
MAX_IN_FLIGHT = 64
DIRECTIONS = {
    "both": faults_pb2.DIRECTION_BOTH,
    "outbound": faults_pb2.DIRECTION_OUTBOUND,
    "inbound": faults_pb2.DIRECTION_INBOUND,
}


def _unary(channel: grpc.Channel, service: str, method: str, response: Any) -> Any:
    return channel.unary_unary(
        f"/rumor.v1.{service}/{method}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response.FromString,
    )


class Harness:
    def __init__(
        self,
        scenario: Scenario,
        work_dir: Path,
        *,
        seed: int | None = None,
        say: Callable[[str], None] = print,
    ) -> None:
        self.scenario = scenario
        self.work_dir = work_dir
        self.seed = scenario.seed if seed is None else seed
        self.rng = random.Random(self.seed)
        self.say = say
        self.history = History()
        self.nodes: list[NodeProcess] = []
        self.names: list[str] = []
        self.ids: list[int] = []
        self._killed: set[int] = set()
        self._paused: set[int] = set()
        self._open_faults: dict[str, tuple[int, str]] = {}
        self._op = 0
        self.skipped: list[str] = []
        self.network: netns.NamespaceNetwork | None = None
        self._isolated: set[int] = set()

    def _skip(self, message: str) -> None:
        if message not in self.skipped:
            self.skipped.append(message)
        self.say(f"  skipped: {message}")

    def _prefix(self, index: int) -> list[str]:
        return self.network.prefix(index) if self.network is not None else []

    # ---- nodes ----------------------------------------------------------

    def _cluster_secret(self) -> tuple[str | None, tuple[str, ...]]:
        """Nodes in network namespaces listen on non-loopback addresses: they get a
        generated cluster secret (a file of mode 0600), as a real deployment would."""
        if self.network is None:
            return None, ()
        secret = secrets.token_hex(32)
        path = self.work_dir / "cluster-secret"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secret + "\n")
        return secret, ("--cluster-secret-file", str(path))

    def _start_nodes(self) -> None:
        secret, secret_args = self._cluster_secret()
        args = (*EXPERIMENT_NODE_ARGS, *self.scenario.node_args, *secret_args)
        for index in range(self.scenario.nodes):
            name = f"n{index + 1}"
            seeds = ("--seeds", self.nodes[0].address) if self.nodes else ()
            advertise: tuple[str, ...] = ()
            if self.network is not None:
                advertise = ("--advertise", self.network.listen(index))
            node = NodeProcess(
                self.work_dir / name,
                *args,
                "--name",
                name,
                *advertise,
                *seeds,
                prefix=self._prefix(index),
                cluster_secret=secret,
            )
            if self.network is not None:
                node.address = self.network.listen(index)
            node.start()
            self.nodes.append(node)
            self.names.append(name)
            self.ids.append(int(node.node_id, 16))
        self.history.nodes = list(self.names)

    def _faults_call(self, index: int, method: str, request: Any) -> None:
        call = _unary(self.nodes[index].channel, "Faults", method, faults_pb2.FaultState)
        call(request, timeout=5)

    def _status(self, index: int) -> admin_pb2.StatusResponse | None:
        call = _unary(self.nodes[index].channel, "Admin", "Status", admin_pb2.StatusResponse)
        try:
            response: admin_pb2.StatusResponse = call(admin_pb2.StatusRequest(), timeout=5)
        except grpc.RpcError:
            return None
        return response

    # ---- faults ---------------------------------------------------------

    def _open(self, kind: str, detail: str) -> None:
        self._open_faults[f"{kind}:{detail}"] = (time.monotonic_ns(), detail)

    def _close(self, kind: str, detail: str) -> None:
        opened = self._open_faults.pop(f"{kind}:{detail}", None)
        if opened is not None:
            self.history.faults.append(FaultWindow(kind, opened[0], time.monotonic_ns(), opened[1]))

    def _close_all(self) -> None:
        now = time.monotonic_ns()
        for name, (start, detail) in self._open_faults.items():
            self.history.faults.append(FaultWindow(name.split(":")[0], start, now, detail))
        self._open_faults.clear()

    def apply(self, step: FaultStep) -> None:
        self.say(f"  t={step.at_s:>5.1f}s fault: {step.action} {step.params or ''}")
        self.appliers()[step.action](int(step.params.get("node", 0)), step.params)

    def appliers(self) -> dict[Action, Callable[[int, dict[str, Any]], None]]:
        """Per scenario action, what applies it (given the node and the step's parameters)."""
        return {
            FaultKind.PARTITION: self._partition,
            FaultKind.BLOCK: self._block,
            FaultKind.LOSS: self._loss,
            FaultKind.SKEW: self._skew,
            FaultKind.CRASH: self._crash,
            FaultKind.PAUSE: self._pause,
            FaultKind.FAKETIME: lambda n, p: self._faketime(n, float(p.get("offset_s", 5))),
            FaultKind.ISOLATE: lambda n, _: self._isolate(n),
            Recovery.RESTART: self._restart_crashed,
            Recovery.RESUME: self._resume,
            Recovery.RECONNECT: lambda n, _: self._reconnect(n),
            Recovery.HEAL: lambda _n, _p: self.heal(),
        }

    def _partition(self, _: int, p: dict[str, Any]) -> None:
        groups = [list(map(int, g)) for g in p["groups"]]
        for group in groups:
            others = [self.ids[i] for i in range(len(self.nodes)) if i not in group]
            for member in group:
                self._faults_call(member, "Block", faults_pb2.BlockRequest(peers=others))
        self._open(FaultKind.PARTITION, str(groups))

    def _block(self, node: int, p: dict[str, Any]) -> None:
        direction = DIRECTIONS[str(p.get("direction", "both"))]
        peers = [self.ids[int(i)] for i in p.get("peers", [])]
        self._faults_call(node, "Block", faults_pb2.BlockRequest(peers=peers, direction=direction))
        self._open(FaultKind.BLOCK, f"n{node + 1} {p.get('direction', 'both')}")

    def _loss(self, _: int, p: dict[str, Any]) -> None:
        request = faults_pb2.LossRequest(
            drop_fraction=float(p.get("drop", 0)),
            delay_fraction=float(p.get("delay_fraction", 0)),
            delay_ms=int(p.get("delay_ms", 0)),
        )
        for index in range(len(self.nodes)):
            if index not in self._killed:
                self._faults_call(index, "SetLoss", request)
        self._open(FaultKind.LOSS, f"drop {p.get('drop', 0)}")

    def _skew(self, node: int, p: dict[str, Any]) -> None:
        for name in [
            n for n in self._open_faults if n.startswith(f"{FaultKind.SKEW}:n{node + 1} ")
        ]:
            kind, _, detail = name.partition(":")
            self._close(kind, detail)
        offset_ms = int(p["offset_ms"])
        if offset_ms == 0:
            self._faults_call(node, "SetClockOffset", faults_pb2.ClockOffsetRequest())
            return
        self._faults_call(
            node, "SetClockOffset", faults_pb2.ClockOffsetRequest(offset_ms=offset_ms)
        )
        self._open(FaultKind.SKEW, f"n{node + 1} {p['offset_ms']} ms")

    def _crash(self, node: int, _: dict[str, Any]) -> None:
        self.nodes[node].kill()
        self._killed.add(node)
        self._open(FaultKind.CRASH, f"n{node + 1}")

    def _restart_crashed(self, node: int, _: dict[str, Any]) -> None:
        self._restart(node)
        self._close(FaultKind.CRASH, f"n{node + 1}")

    def _pause(self, node: int, _: dict[str, Any]) -> None:
        self.nodes[node].pause()
        self._paused.add(node)
        self._open(FaultKind.PAUSE, f"n{node + 1}")

    def _resume(self, node: int, _: dict[str, Any]) -> None:
        self.nodes[node].resume()
        self._paused.discard(node)
        self._close(FaultKind.PAUSE, f"n{node + 1}")

    def _isolate(self, node: int) -> None:
        if node in self._isolated:
            return
        if self.network is not None:
            self.network.isolate(node)
        else:
            self._skip("isolate without network namespaces: Faults Block of the node instead")
            others = [self.ids[i] for i in range(len(self.nodes)) if i != node]
            self._faults_call(node, "Block", faults_pb2.BlockRequest(peers=others))
        self._isolated.add(node)
        self._open(FaultKind.ISOLATE, f"n{node + 1}")

    def _reconnect(self, node: int) -> None:
        if node not in self._isolated:
            return
        self._isolated.discard(node)
        if self.network is not None:
            self.network.restore(node)
        else:
            with contextlib.suppress(grpc.RpcError):
                self._faults_call(node, "Clear", faults_pb2.Empty())
        self._close(FaultKind.ISOLATE, f"n{node + 1}")

    def _restart(self, node: int) -> None:
        if node in self._killed:
            self.nodes[node].start()
            self._killed.discard(node)

    def _faketime(self, node: int, offset_s: float) -> None:
        if shutil.which("faketime") is None:
            message = "faketime is not installed (apt-get install faketime): real skew skipped"
            self.skipped.append(message)
            self.say(f"  skipped: {message}")
            return
        process = self.nodes[node]
        process.stop()
        process.prefix = [*self._prefix(node), "faketime", "-f", f"{offset_s:+g}s"]
        process.start()
        self._open(FaultKind.FAKETIME, f"n{node + 1} {offset_s:+g} s")

    def heal(self) -> None:
        for node in sorted(self._paused):
            self.nodes[node].resume()
        self._paused.clear()
        for node in sorted(self._killed):
            self._restart(node)
        if self.network is not None:
            self.network.restore_all()
        self._isolated.clear()
        for index in range(len(self.nodes)):
            with contextlib.suppress(grpc.RpcError):
                self._faults_call(index, "Clear", faults_pb2.Empty())
        self._close_all()

    # ---- workload and watches -------------------------------------------

    async def _watch(self, index: int, namespace: str, stop: asyncio.Event) -> None:
        name = self.names[index]
        while not stop.is_set():
            if index in self._killed or not self.nodes[index].alive():
                await asyncio.sleep(0.05)
                continue
            try:
                async with AsyncClient(self.nodes[index].address) as client:
                    async for change in client.namespace(namespace).watch():
                        if change.fell_behind:
                            self.say(
                                f"  warning: the watch on {name} fell behind"
                                f" ({change.dropped} events lost)"
                            )
                            continue
                        self.history.applied.append(
                            Applied(
                                name,
                                change.key,
                                change.hlc,
                                change.origin,
                                change.seq,
                                change.deleted,
                                change.expiration,
                                change.applied_monotonic_ns,
                            )
                        )
                        if stop.is_set():
                            return
            except (RumorError, grpc.RpcError):
                await asyncio.sleep(0.05)

    async def _operation(
        self, clients: list[AsyncClient], namespace: str, index: int, kind: str, key: str
    ) -> None:
        workload = self.scenario.workload
        self._op += 1
        op = self._op
        ns = clients[index].namespace(namespace)
        name = self.names[index]
        started = time.monotonic_ns()
        try:
            if kind == "read":
                await ns.get(key)
                return
            if kind == "delete":
                result = await ns.delete(key)
                value = None
            else:
                value = f"{op}:" + "x" * max(0, workload.value_bytes - len(str(op)) - 1)
                ttl = workload.ttl_s if self.rng.random() < workload.ttl_share else None
                result = await ns.put(key, value, expiration_ttl=ttl)
        except (TimeoutError, RumorError, grpc.RpcError) as error:
            if kind != "read":
                self.history.attempts.append(
                    Attempt(op, name, key, kind == "delete", str(error)[:200], started)
                )
            return
        self.history.acks.append(
            Ack(
                op,
                name,
                key,
                kind == "delete",
                value,
                result.expiration,
                result.hlc,
                result.origin,
                result.seq,
                started,
                time.monotonic_ns(),
            )
        )

    def _live_nodes(self) -> list[int]:
        return [
            i for i in range(len(self.nodes)) if i not in self._killed and i not in self._paused
        ]

    def _next_op(self) -> int:
        self._op += 1
        return self._op

    async def _workload(self, clients: list[AsyncClient], namespace: str, started: float) -> None:
        workload = self.scenario.workload
        writers = list(workload.writers or range(len(self.nodes)))
        interval = 1 / workload.rate
        in_flight: set[asyncio.Task[None]] = set()
        count = int(self.scenario.duration_s * workload.rate)
        for i in range(count):
            delay = started + i * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            roll = self.rng.random()
            kind = (
                "read"
                if roll < workload.read
                else "write"
                if roll < workload.read + workload.write
                else "delete"
            )
            candidates = writers if kind != "read" else list(range(len(self.nodes)))
            live = [c for c in candidates if c not in self._killed and c not in self._paused]
            if not live:
                continue
            index = self.rng.choice(live)
            key = f"k{self.rng.randrange(workload.keys):05d}"
            if len(in_flight) >= MAX_IN_FLIGHT:
                await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            task = asyncio.create_task(self._operation(clients, namespace, index, kind, key))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.wait(in_flight, timeout=10)

    async def _faults(self, started: float) -> None:
        for step in self.scenario.faults:
            delay = started + step.at_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await asyncio.to_thread(self.apply, step)

    async def _run(self) -> None:
        clients = [AsyncClient(node.address, timeout=5) for node in self.nodes]
        info = await clients[0].namespaces.create(f"experiment-{self.scenario.name}")
        # The namespace itself must reach every node before the workload starts.
        for client in clients[1:]:
            for _ in range(500):
                if any(n.id == info.id for n in await client.namespaces.list()):
                    break
                await asyncio.sleep(0.02)
        stop = asyncio.Event()
        watches = [
            asyncio.create_task(self._watch(i, info.id, stop)) for i in range(len(self.nodes))
        ]
        await asyncio.sleep(0.5)  # let the watches attach
        started = time.monotonic()
        self.history.started_ns = time.monotonic_ns()
        moving_clients = MovingClients(
            self.scenario.moving, self.history, self.names, self._live_nodes, self._next_op
        )
        moving = [
            moving_clients.run(
                clients, info.id, client, self.seed, started, self.scenario.duration_s
            )
            for client in range(self.scenario.moving.count)
        ]
        await asyncio.gather(
            self._workload(clients, info.id, started), self._faults(started), *moving
        )
        self.say("  workload done; healing")
        await asyncio.to_thread(self.heal)
        self.history.healed_ns = time.monotonic_ns()
        await asyncio.to_thread(self._await_convergence)
        await asyncio.sleep(0.5)  # the watches catch the last applies
        stop.set()
        for task in watches:
            task.cancel()
        for task in watches:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in clients:
            await client.close()
        self._read_final(info.id)

    def _await_convergence(self) -> None:
        bound = self.scenario.converge_bound_s
        deadline = time.monotonic() + 2 * bound + 10

        def digests() -> dict[str, int] | None:
            states = [self._status(i) for i in range(len(self.nodes))]
            if any(s is None for s in states):
                return None
            found = {self.names[i]: s.audit_digest for i, s in enumerate(states) if s}
            marks = {
                tuple(sorted((o, m) for o, m in s.watermarks.items() if m)) for s in states if s
            }
            return found if len(set(found.values())) == 1 and len(marks) == 1 else None

        while time.monotonic() < deadline:
            found = digests()
            if found is not None:
                self.history.converged_ns = time.monotonic_ns()
                self.history.final_digests = found
                return
            time.sleep(0.05)
        self.history.final_digests = {
            self.names[i]: s.audit_digest
            for i in range(len(self.nodes))
            if (s := self._status(i)) is not None
        }

    def _read_final(self, namespace: str) -> None:
        self.history.end_wall_s = time.time()
        for index, node in enumerate(self.nodes):
            records = node.channel.unary_stream(
                "/rumor.v1.Admin/Records",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=admin_pb2.RecordInfo.FromString,
            )
            for info in records(admin_pb2.RecordsRequest(namespace_id=namespace), timeout=60):
                self.history.held.append(
                    Held(
                        self.names[index],
                        info.key.decode(),
                        info.hlc,
                        info.origin,
                        info.seq,
                        info.tombstone,
                        info.expiration or None,
                    )
                )

    def run(self) -> History:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            if self.scenario.network == "netns":
                reason = netns.available()
                if reason is not None:
                    self._skip(f"real partitions need network namespaces: {reason}")
                else:
                    netns.cleanup_leftovers()
                    self.network = stack.enter_context(netns.NamespaceNetwork(self.scenario.nodes))
            return self._run_nodes()

    def _run_nodes(self) -> History:
        try:
            self._start_nodes()
            poll(
                lambda: all(
                    (s := self._status(i)) is not None
                    and s.ready
                    and len(s.members) == len(self.nodes)
                    for i in range(len(self.nodes))
                ),
                timeout=30,
                interval=0.05,
            )
            asyncio.run(self._run())
        finally:
            for node in self.nodes:
                node.resume()
                node.stop()
        return self.history


def run(
    scenario: Scenario,
    work_dir: Path,
    *,
    seed: int | None = None,
    say: Callable[[str], None] = print,
) -> tuple[History, list[str]]:
    harness = Harness(scenario, work_dir, seed=seed, say=say)
    history = harness.run()
    return history, harness.skipped
