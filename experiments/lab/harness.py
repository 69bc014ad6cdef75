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

The faults are applied, healed and recorded by ``fault_injector.FaultInjector``
(``Harness.faults``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import grpc.aio
import structlog

from rumor.client import AsyncClient
from rumor.client.errors import RumorError
from rumor.experiments.lab import netns
from rumor.experiments.lab.fault_injector import FaultInjector
from rumor.experiments.lab.history import Ack, Applied, Attempt, Held, History
from rumor.experiments.lab.moving_clients import MovingClients
from rumor.experiments.lab.processes import NodeProcess, poll, unary
from rumor.experiments.lab.scenario import Scenario
from rumor.v1 import admin_pb2

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
        self._op = 0
        self.skipped: list[str] = []
        self.network: netns.NamespaceNetwork | None = None
        self.faults = FaultInjector(
            self.nodes, self.ids, self.history, skipped=self.skipped, say=say
        )

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
                prefix=self.faults.prefix(index),
                cluster_secret=secret,
            )
            if self.network is not None:
                node.address = self.network.listen(index)
            node.start()
            self.nodes.append(node)
            self.names.append(name)
            self.ids.append(int(node.node_id, 16))
        self.history.nodes = list(self.names)

    def _status(self, index: int) -> admin_pb2.StatusResponse | None:
        call = unary(self.nodes[index].channel, "Admin", "Status", admin_pb2.StatusResponse)
        try:
            response: admin_pb2.StatusResponse = call(admin_pb2.StatusRequest(), timeout=5)
        except grpc.RpcError:
            return None
        return response

    # ---- workload and watches -------------------------------------------

    async def _watch(self, index: int, namespace: str, stop: asyncio.Event) -> None:
        name = self.names[index]
        while not stop.is_set():
            if index in self.faults.killed or not self.nodes[index].alive():
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
        return [i for i in range(len(self.nodes)) if self.faults.serving(i)]

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
            live = [c for c in candidates if self.faults.serving(c)]
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
            await asyncio.to_thread(self.faults.apply, step)

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
        await asyncio.to_thread(self.faults.heal)
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
                    self.faults.skip(f"real partitions need network namespaces: {reason}")
                else:
                    netns.cleanup_leftovers()
                    network = stack.enter_context(netns.NamespaceNetwork(self.scenario.nodes))
                    self.network = self.faults.network = network
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
