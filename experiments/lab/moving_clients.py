"""Moving clients: each picks a random live node for every call, one call at a time.

The history the session checker judges (``properties.session_guarantees``):
a load balancer, a failover or a Worker in another place moves a client
between nodes the same way. Clients with an even number keep a session (every
call after the session's token, the token carried from node to node); the
others make plain calls, so one run gives the figures with and without
sessions under the same faults. They use their own small key space; their
writes also go into the history's acks and attempts, so every other checker
judges them too.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

import grpc

from rumor.client import AsyncClient
from rumor.client.errors import RumorError
from rumor.experiments.lab.history import Ack, Attempt, History, MovingCall
from rumor.experiments.lab.scenario import MovingClients as MovingClientsConfig


class MovingClients:
    def __init__(
        self,
        config: MovingClientsConfig,
        history: History,
        names: list[str],
        live_nodes: Callable[[], list[int]],
        next_op: Callable[[], int],
    ) -> None:
        self.config = config
        self.history = history
        self.names = names
        self.live_nodes = live_nodes
        self.next_op = next_op

    async def run(
        self,
        clients: list[AsyncClient],
        namespace: str,
        client: int,
        seed: int,
        started: float,
        duration_s: float,
    ) -> None:
        """One client's calls until the workload ends (``started`` + ``duration_s``)."""
        config = self.config
        with_session = client % 2 == 0
        token: str | None = None
        rng = random.Random(seed * 1000 + client)
        while time.monotonic() < started + duration_s:
            live = self.live_nodes()
            if live:
                index = rng.choice(live)
                session = clients[index].session(token) if with_session else None
                ns = (session or clients[index]).namespace(namespace)
                roll = rng.random()
                kind = (
                    "read"
                    if roll < config.read
                    else "put"
                    if roll < config.read + config.write
                    else "delete"
                )
                key = f"m{rng.randrange(config.keys):03d}"
                await self._call(ns, client, with_session, index, kind, key)
                if session is not None:
                    token = session.token
            await asyncio.sleep(config.think_ms / 1000)

    async def _call(
        self, ns: Any, client: int, with_session: bool, index: int, kind: str, key: str
    ) -> None:
        op = self.next_op()
        name = self.names[index]
        started = time.monotonic_ns()
        value = f"{op}:moving"
        try:
            if kind == "read":
                got = await ns.get(key)
                read_op = None if got is None else int(got.split(":", 1)[0])
                self.history.moving.append(
                    MovingCall(
                        client, with_session, op, name, kind, key, True, got is not None,
                        read_op, 0, 0, started, time.monotonic_ns(),
                    )
                )  # fmt: skip
                return
            result = await (ns.delete(key) if kind == "delete" else ns.put(key, value))
        except (TimeoutError, RumorError, grpc.RpcError) as error:
            self.history.moving.append(
                MovingCall(
                    client, with_session, op, name, kind, key, False, False, None, 0, 0,
                    started, time.monotonic_ns(), str(error)[:200],
                )
            )  # fmt: skip
            if kind != "read":
                self.history.attempts.append(
                    Attempt(op, name, key, kind == "delete", str(error)[:200], started)
                )
            return
        ended = time.monotonic_ns()
        deleted = kind == "delete"
        self.history.moving.append(
            MovingCall(
                client, with_session, op, name, kind, key, True, False, None,
                result.hlc, result.origin, started, ended,
            )
        )  # fmt: skip
        self.history.acks.append(
            Ack(
                op, name, key, deleted, None if deleted else value, result.expiration,
                result.hlc, result.origin, result.seq, started, ended,
            )
        )  # fmt: skip
