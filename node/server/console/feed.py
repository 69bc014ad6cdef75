"""What the web console shows live: the node's status and the changes it applies.

``ClusterView.snapshot`` reads the in-process EngineDriver (the HTTP gateway runs
on the node's event loop, so nothing goes over gRPC to the node itself): the
member table with states and incarnations, each member's watermarks as this
node last learned them and how far each lags the highest known per origin,
the audit digest, the event-loop lag and replication rates since the
previous snapshot.

The snapshot also holds the other alive members' audit digests and whether
they agree with this node's (``audit.agreement``), as ``PeerFeeds`` polled
them, and the members whose Watch stream ``PeerFeeds`` holds.

``stream`` is one console's Server-Sent Events stream: a ``status`` event
every ``STATUS_INTERVAL_S``, a ``changes`` event with every change the node
applies, read from a WatchHub watcher of every namespace, and an ``applied``
event with the changes the other members applied, relayed by ``PeerFeeds``
(subscribed while the stream is open). The stream is a
watcher like any other: it is refused (Overloaded, 503) beyond the node's
watcher limits, and when the browser reads too slowly changes are dropped and
a ``behind`` event says how many. It ends when the node's HTTP listener shuts
down (``closing``), so a stopping node never waits for open consoles.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from rumor.node.core import hlc
from rumor.node.core.audit import agreement, digest
from rumor.node.core.membership import State
from rumor.node.core.namespaces import RESERVED_NAMESPACE, id_text, is_reserved
from rumor.node.core.record import RecordHeader
from rumor.node.server.console.peers import PeerFeeds, Subscription
from rumor.node.server.driver.engine_driver import EngineDriver
from rumor.node.server.loop_lag import LoopLag
from rumor.node.server.watch import ANY_NAMESPACE, Change, Watcher, WatchHub

STATUS_INTERVAL_S = 0.25  # how often the browser learns the member table
MAX_CHANGES_PER_EVENT = 200
WATCH_BUFFER = 1024


def _hex(node_id: int) -> str:
    return f"{node_id:016x}"


@dataclass(slots=True)
class _Rates:
    at: float = 0.0
    totals: dict[str, int] = field(default_factory=dict)


class ClusterView:
    """The status the console shows, read from the node's own objects."""

    def __init__(
        self,
        driver: EngineDriver,
        watches: WatchHub,
        loop_lag: LoopLag | None,
        peers: PeerFeeds | None = None,
    ) -> None:
        self.driver = driver
        self.watches = watches
        self.loop_lag = loop_lag
        self.peers = peers  # None: no relay of other members' Watch, no remote digests
        self._rates = _Rates()

    def _rates_per_second(self) -> dict[str, float]:
        stats = self.driver.stats
        totals = {
            "pushes_sent": stats.pushes_sent,
            "push_bytes_received": stats.push_bytes_received,
            "exchanges": stats.exchanges,
            "records_applied_remote": stats.records_applied_remote,
        }
        now = time.monotonic()
        previous, elapsed = self._rates, now - self._rates.at
        rates = {
            name: (value - previous.totals.get(name, value)) / elapsed if elapsed > 0 else 0.0
            for name, value in totals.items()
        }
        if elapsed >= 1.0 or not previous.totals:  # rates over at least a second
            self._rates = _Rates(now, totals)
        return rates

    def snapshot(self) -> dict[str, Any]:
        r = self.driver
        replica = r.replica
        own_digest = digest(replica.audit_buckets)
        members, digests = self._members(own_digest)
        loop_lag = self.loop_lag
        audit = agreement(digests)
        return {
            "node": {
                "id": _hex(replica.node_id),
                "name": r.name,
                "address": r.advertise,
                "ready": r.ready,
                "fenced": r.fenced,
                "not_ready": r.not_ready,
                "writes_refused": r.writes_refused,
                "audit_digest": f"{own_digest:016x}",
                "audit_agreement": {
                    "agree": audit.agree,
                    "common": None if audit.common is None else f"{audit.common:016x}",
                    "differ": [_hex(m) for m in audit.differ],
                    "unknown": [_hex(m) for m in audit.unknown],
                },
                "watching": [] if self.peers is None else self.peers.watching(),
                "audit_repairs_total": replica.audit_repairs_total,
                "records_held": max(replica.records_held, 0),
                "tombstones_held": max(replica.tombstones_held, 0),
                "loop_lag_ms": 0.0 if loop_lag is None else loop_lag.last_seconds * 1000,
                "max_loop_lag_ms": 0.0 if loop_lag is None else loop_lag.max_seconds * 1000,
                "wall_ms": int(time.time() * 1000),
                "watchers": len(self.watches.watchers),
                "max_watchers": self.watches.max_watchers,
            },
            "members": members,
            "rates": self._rates_per_second(),
        }

    def _members(self, own_digest: int) -> tuple[list[dict[str, Any]], dict[int, int | None]]:
        """Each member as the console shows it (its lag behind the highest watermark seen
        for each origin), and the audit digests known of this node and the live members."""
        r = self.driver
        replica = r.replica
        own = dict(replica.own_watermarks())
        vectors: dict[int, dict[int, int]] = {}
        for member in r.membership.all():
            marks = own if member.id == replica.node_id else r.membership.vectors.get(member.id, {})
            vectors[member.id] = dict(marks)
        highest: dict[int, int] = {}
        for marks in vectors.values():
            for origin, seq in marks.items():
                highest[origin] = max(highest.get(origin, 0), seq)
        digests: dict[int, int | None] = {}
        members = []
        for member in r.membership.all():
            if member.id == replica.node_id:
                member_digest: int | None = own_digest
            else:
                member_digest = None if self.peers is None else self.peers.digest_of(member.id)
            if member.state is State.ALIVE or member.id == replica.node_id:
                digests[member.id] = member_digest
            marks = vectors[member.id]
            lag = {_hex(o): top - marks.get(o, 0) for o, top in highest.items()}
            members.append(
                {
                    "id": _hex(member.id),
                    "name": member.name,
                    "address": member.address,
                    "state": member.state.name.lower(),
                    "incarnation": member.incarnation,
                    "self": member.id == replica.node_id,
                    "watermarks": {_hex(o): seq for o, seq in marks.items() if seq},
                    "lag": lag,
                    "behind": sum(lag.values()),
                    "watermarks_agree": all(v == 0 for v in lag.values()),
                    "clock_offset_ms": r.engine.fence.offsets.get(member.id, 0.0),
                    "writes_refused": (
                        r.writes_refused if member.id == replica.node_id else r.refusing(member.id)
                    ),
                    "audit_digest": None if member_digest is None else f"{member_digest:016x}",
                }
            )
        return members, digests


def change_json(change: Change) -> dict[str, Any]:
    header = RecordHeader.decode(change.header)
    if change.namespace == RESERVED_NAMESPACE:
        kind, namespace = "namespace", ""
    else:
        kind, namespace = "key", id_text(change.namespace)
    return {
        "kind": kind,
        "namespace": namespace,
        "key": change.key.decode("utf-8", "replace"),
        "origin": _hex(header.origin),
        "seq": header.seq,
        "written_ms": hlc.wall_ms_of(header.hlc),
        "applied_ms": change.applied_wall_ms,
        "deleted": header.tombstone,
        "expiration": header.expiration,
    }


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _drain(watcher: Watcher, first: Change) -> list[dict[str, Any]]:
    changes = [first]
    while len(changes) < MAX_CHANGES_PER_EVENT and not watcher.queue.empty():
        changes.append(watcher.queue.get_nowait())
    return [
        change_json(c)
        for c in changes
        if not is_reserved(c.namespace) or c.namespace == RESERVED_NAMESPACE
    ]


def _relayed(subscription: Subscription, first: dict[str, Any]) -> list[dict[str, Any]]:
    records = [first]
    while len(records) < MAX_CHANGES_PER_EVENT and not subscription.queue.empty():
        records.append(subscription.queue.get_nowait())
    return records


async def stream(
    request: web.Request, view: ClusterView, closing: asyncio.Event, connection: str
) -> web.StreamResponse:
    """The SSE stream of one console (Overloaded before it starts when over the limits)."""
    watcher = view.watches.open(ANY_NAMESPACE, b"", WATCH_BUFFER, connection)
    subscription = None if view.peers is None else view.peers.subscribe()
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        await _serve(response, view, watcher, subscription, closing)
        return response
    finally:
        view.watches.close(watcher, connection)
        if subscription is not None and view.peers is not None:
            await view.peers.unsubscribe(subscription)


async def _serve(
    response: web.StreamResponse,
    view: ClusterView,
    watcher: Watcher,
    subscription: Subscription | None,
    closing: asyncio.Event,
) -> None:
    """Write ``status``, ``changes``, ``applied`` and ``behind`` events until ``closing``."""
    closed = asyncio.ensure_future(closing.wait())
    getter = asyncio.ensure_future(watcher.queue.get())
    relay = None if subscription is None else asyncio.ensure_future(subscription.queue.get())
    try:
        await response.write(b"retry: 1000\n\n" + _event("status", view.snapshot()))
        next_status = time.monotonic() + STATUS_INTERVAL_S
        while not closing.is_set():
            timeout = max(next_status - time.monotonic(), 0.0)
            waiting = {getter, closed} if relay is None else {getter, relay, closed}
            done, _ = await asyncio.wait(waiting, timeout=timeout)
            dropped = watcher.dropped
            if subscription is not None:
                dropped += subscription.dropped
                subscription.dropped = 0
            watcher.dropped = 0
            if dropped:
                await response.write(_event("behind", {"dropped": dropped}))
            if getter in done:
                await response.write(_event("changes", _drain(watcher, getter.result())))
                getter = asyncio.ensure_future(watcher.queue.get())
            if relay is not None and subscription is not None and relay in done:
                records = _relayed(subscription, relay.result())
                await response.write(_event("applied", records))
                relay = asyncio.ensure_future(subscription.queue.get())
            if time.monotonic() >= next_status:
                await response.write(_event("status", view.snapshot()))
                next_status = time.monotonic() + STATUS_INTERVAL_S
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        for future in (closed, getter, relay):
            if future is not None:
                future.cancel()
