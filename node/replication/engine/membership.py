"""The member table and SWIM failure detection, sans-I/O.

Members are learned from seeds (Join), from every message's envelope (the
sender itself) and from the updates piggybacked on push and anti-entropy
messages. The driver probes one member per interval; a failed direct probe
and failed indirect probes make it *suspect*; a suspect not refuted (by a
higher incarnation from the member itself) within the suspicion timeout is
*dead*. Dead means down, not gone: only a removal takes a member out of the
count that garbage collection waits on. The node's own incarnation and the
table are persisted, so a restart keeps both.

The member lifecycle (what ``tick`` hands the engine to retire):

- a member that left, or is dead, for ``member_timeout_ms`` is timed out
  (retired for ever: it stops holding GC back, and if it comes back with its
  data it is refused and must rejoin as a new node). A dead one only while
  this node sees a majority of the members up (those a probe of it reached
  once or whose writes it holds: not made-up ids): in a partition, only one
  side can time the other out, never both sides each other; a member that
  left said so itself and needs no majority;
- a member no probe of this node ever confirmed (answered under its own id at
  its address, directly or through a helper), that is down and of whose
  writes this node holds none, is timed out after the shorter
  ``unconfirmed_timeout_ms``: a forged message from a made-up id, or an
  address whose process was replaced, must not hold GC back for hours.
  Confirmations are kept in the store, so a restart does not forget them.
"""

from __future__ import annotations

import random
import struct
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from rumor.node.core.errors import InsufficientStorage
from rumor.node.core.membership import Event, Member, State, supersedes, transition
from rumor.node.storage import layout
from rumor.node.storage.store import META, Store, prefix_end

_MEMBER = struct.Struct(">QQBQ")  # id, incarnation, state, boot nonce
_CONFIRMED_PREFIX = b"confirmed-member/"  # + id u64: a probe of this node reached it once
RETRANSMITS = 6


def encode_member(member: Member) -> bytes:
    address = member.address.encode()
    return (
        _MEMBER.pack(member.id, member.incarnation, int(member.state), member.boot_nonce)
        + struct.pack(">H", len(address))
        + address
        + member.name.encode()
    )


def decode_member(data: bytes) -> Member:
    member_id, incarnation, state, nonce = _MEMBER.unpack_from(data)
    offset = _MEMBER.size
    (length,) = struct.unpack_from(">H", data, offset)
    offset += 2
    address = data[offset : offset + length].decode()
    name = data[offset + length :].decode()
    return Member(member_id, address, incarnation, State(state), nonce, name)


@dataclass(slots=True)
class _Gossiped:
    member: Member
    remaining: int


class Membership:
    def __init__(
        self,
        store: Store,
        me: Member,
        *,
        suspicion_timeout_ms: int = 5000,
        member_timeout_ms: int = 0,
        unconfirmed_timeout_ms: int = 0,
    ) -> None:
        self.store = store
        self.retransmits = RETRANSMITS  # the engine scales it with the cluster
        self.suspicion_timeout_ms = suspicion_timeout_ms
        self.member_timeout_ms = member_timeout_ms
        self.unconfirmed_timeout_ms = unconfirmed_timeout_ms
        self.members: dict[int, Member] = {}
        self._views: dict[str, list[Any]] = {}
        for _, raw in store.scan(
            META, layout.META_MEMBER_PREFIX, prefix_end(layout.META_MEMBER_PREFIX)
        ):
            member = decode_member(raw)
            self.members[member.id] = member
        stored = store.get(META, layout.META_INCARNATION)
        incarnation = max(me.incarnation, 0 if stored is None else layout.unpack_u64(stored))
        self.me = replace(me, incarnation=incarnation, state=State.ALIVE)
        self.members[me.id] = self.me
        self._persist([self.me], incarnation=True)
        self.vectors: dict[int, dict[int, int]] = {}
        self.since_ms: dict[int, int] = {}  # when a suspect or dead member became so
        self._gossip: deque[_Gossiped] = deque([_Gossiped(self.me, self.retransmits)])
        self._probe_order: list[int] = []
        self.removed_me = False
        self._loaded_down = [
            m.id
            for m in self.members.values()
            if m.state in (State.DEAD, State.LEFT) and m.id != self.me.id
        ]
        self.confirmed: set[int] = {
            struct.unpack(">Q", key[len(_CONFIRMED_PREFIX) :])[0]
            for key, _ in store.scan(META, _CONFIRMED_PREFIX, prefix_end(_CONFIRMED_PREFIX))
        }

    # ---- the table ------------------------------------------------------

    def merge(self, update: Member, now_ms: int) -> bool:
        """Take in what a message says about a member; True if the table changed."""
        if update.id == self.me.id:
            return self._about_me(update)
        current = self.members.get(update.id)
        if not supersedes(update, current):
            return False
        self._set(update, now_ms)
        return True

    def merge_all(self, updates: Iterable[Member], now_ms: int) -> list[Member]:
        """``merge`` each update; the ones that changed a member's state, to be noticed.

        The common case, an update the table already holds (each is piggybacked
        ``retransmits`` times), costs one lookup and one comparison.
        """
        members = self.members
        changed: list[Member] = []
        for update in updates:
            current = members.get(update.id)
            if current is update or current == update:
                continue
            before = None if current is None else current.state
            if self.merge(update, now_ms) and before != update.state:
                changed.append(update)
        return changed

    def _about_me(self, update: Member) -> bool:
        if update.state is State.REMOVED:
            self.removed_me = True
            return False
        if (
            update.state in (State.SUSPECT, State.DEAD)
            and update.incarnation >= self.me.incarnation
        ):
            # Refute: only the member itself raises its incarnation.
            self.me = replace(self.me, incarnation=update.incarnation + 1, state=State.ALIVE)
            self.members[self.me.id] = self.me
            self._persist([self.me], incarnation=True)
            self._gossip.append(_Gossiped(self.me, self.retransmits))
            return True
        if update.incarnation > self.me.incarnation:
            # A peer took us back as alive at a higher incarnation (proof of life after a
            # partition or restart): adopt it, so our own later news ("left") still wins.
            self.me = replace(self.me, incarnation=update.incarnation)
            self.members[self.me.id] = self.me
            self._persist([self.me], incarnation=True)
            return True
        return False

    def _set(self, member: Member, now_ms: int) -> None:
        previous = self.members.get(member.id)
        self.members[member.id] = member
        self._views.clear()
        if member.state in (State.SUSPECT, State.DEAD, State.LEFT):
            if previous is None or previous.state != member.state:
                self.since_ms[member.id] = now_ms
        else:
            self.since_ms.pop(member.id, None)
        if member.state is State.REMOVED:
            self.vectors.pop(member.id, None)
        self._persist([member])
        self._gossip.append(_Gossiped(member, self.retransmits))

    def _persist(self, members: list[Member], *, incarnation: bool = False) -> None:
        batch = self.store.batch()
        for member in members:
            batch.put(META, layout.member_key(member.id), encode_member(member))
        if incarnation:
            batch.put(META, layout.META_INCARNATION, layout.pack_u64(self.me.incarnation))
        try:
            self.store.write(batch)
        except InsufficientStorage:
            # A full disk: the table is learned again from peers after a restart, and an
            # incarnation stored too low is raised again by the next refutation.
            return
        if incarnation:
            self.store.sync_wal()

    def heard_from(
        self, member_id: int, address: str, boot_nonce: int, now_ms: int, name: str = ""
    ) -> None:
        """A message arrived from ``member_id``: learn it if new, or its new address."""
        if member_id == self.me.id:
            return
        current = self.members.get(member_id)
        if current is None:
            self._set(Member(member_id, address, 0, State.ALIVE, boot_nonce, name), now_ms)
            return
        if current.state is State.REMOVED:
            return
        if (
            current.state is State.ALIVE
            and current.boot_nonce == boot_nonce
            and (current.address == address or not address)
            and (current.name == name or not name)
        ):
            return  # the common case: nothing to learn
        event = Event.HEARD_SAME_BOOT if current.boot_nonce == boot_nonce else Event.HEARD_NEW_BOOT
        moved = replace(
            current,
            address=address or current.address,
            boot_nonce=boot_nonce,
            name=name or current.name,
        )
        if not self._apply(moved, event, now_ms) and moved != current:
            self._set(moved, now_ms)

    def _apply(self, member: Member, event: Event, now_ms: int) -> bool:
        """Apply the SWIM transition for ``event`` to ``member``; False if none applies."""
        change = transition(member.state, event)
        if change is None:
            return False
        state, bump = change
        incarnation = member.incarnation + 1 if bump else member.incarnation
        self._set(replace(member, state=state, incarnation=incarnation), now_ms)
        return True

    def announce(self, address: str) -> None:
        """Set this node's own address (known once bound) and gossip it."""
        self.me = replace(self.me, address=address)
        self.members[self.me.id] = self.me
        self._persist([self.me])
        self._gossip.append(_Gossiped(self.me, self.retransmits))

    def updates(self, limit: int = 8) -> list[Member]:
        """Member updates to piggyback on the next message (each sent a few times)."""
        out: list[Member] = []
        for _ in range(min(limit, len(self._gossip))):
            entry = self._gossip.popleft()
            out.append(entry.member)
            entry.remaining -= 1
            if entry.remaining > 0:
                self._gossip.append(entry)
        return out

    def all(self) -> list[Member]:
        return list(self.members.values())

    # The views below are asked for on every tick; they are kept until the table changes
    # (callers must not modify the lists they get).

    def peers(self) -> list[Member]:
        view = self._views.get("peers")
        if view is None:
            view = self._views["peers"] = [m for m in self.members.values() if m.id != self.me.id]
        return view

    def up_peers(self) -> list[Member]:
        view = self._views.get("up")
        if view is None:
            view = self._views["up"] = [m for m in self.peers() if m.up and m.address]
        return view

    def counted(self) -> list[int]:
        """Every member that is not removed, alive or not: what GC waits on."""
        view = self._views.get("counted")
        if view is None:
            view = [m.id for m in self.members.values() if m.state is not State.REMOVED]
            self._views["counted"] = view
        return view

    def state_of(self, member_id: int) -> State | None:
        member = self.members.get(member_id)
        return None if member is None else member.state

    def may_be_alive(self) -> list[int]:
        """The peers that may be alive, taking writes: those thought dead count (a crashed
        member looks like one behind a partition); those that left or were removed do not."""
        view = self._views.get("may_be_alive")
        if view is None:
            view = [m.id for m in self.peers() if m.state not in (State.LEFT, State.REMOVED)]
            self._views["may_be_alive"] = view
        return view

    def replicas_holding(self, seq: int) -> int:
        """How many nodes (this one included) hold this node's write ``seq`` or something
        newer, by the vectors its peers reported."""
        me = self.me.id
        return 1 + sum(
            1
            for member_id, vector in self.vectors.items()
            if member_id != me
            and vector.get(me, 0) >= seq
            and self.state_of(member_id) is not State.REMOVED
        )

    # ---- SWIM -----------------------------------------------------------

    def next_probe_target(self, rng: random.Random) -> Member | None:
        """Members in a shuffled round-robin order, so each is probed within n rounds."""
        candidates = {m.id for m in self.peers() if m.state in (State.ALIVE, State.SUSPECT)}
        while self._probe_order:
            member_id = self._probe_order.pop()
            if member_id in candidates:
                return self.members[member_id]
        if not candidates:
            return None
        self._probe_order = sorted(candidates)
        rng.shuffle(self._probe_order)
        return self.members[self._probe_order.pop()]

    def reconnect_target(self, rng: random.Random) -> Member | None:
        """A dead or departed member to try again (a healed partition, a restart)."""
        down = [m for m in self.peers() if m.state in (State.DEAD, State.LEFT) and m.address]
        return rng.choice(down) if down else None

    def probe_succeeded(self, member_id: int, now_ms: int) -> None:
        member = self.members.get(member_id)
        if member is not None:
            self._apply(member, Event.PROBE_OK, now_ms)
            self.confirm(member_id)

    def confirm(self, member_id: int) -> None:
        """A probe of this node reached ``member_id`` itself: it is a real process."""
        if member_id in self.confirmed:
            return
        self.confirmed.add(member_id)
        batch = self.store.batch()
        batch.put(META, _CONFIRMED_PREFIX + struct.pack(">Q", member_id), b"")
        self.store.write(batch)

    def probe_failed(self, member_id: int, now_ms: int) -> None:
        member = self.members.get(member_id)
        if member is not None:
            self._apply(member, Event.PROBE_FAILED, now_ms)

    def leave(self) -> Member:
        """This node is stopping cleanly: announce "left"."""
        self.me = replace(self.me, state=State.LEFT)
        self.members[self.me.id] = self.me
        self._persist([self.me])
        return self.me

    def tick(self, now_ms: int, wrote: Callable[[int], bool] = lambda _: True) -> list[int]:
        """Advance suspicion timers; returns the ids to retire (see the module docstring).
        ``wrote(id)``: whether this node holds writes of that member."""
        while self._loaded_down:
            # Down when this process loaded the table: its time starts now.
            self.since_ms.setdefault(self._loaded_down.pop(), now_ms)
        expired: list[int] = []
        majority: bool | None = None
        for member_id, since in list(self.since_ms.items()):
            member = self.members[member_id]
            down_ms = now_ms - since
            if member.state is State.SUSPECT and down_ms >= self.suspicion_timeout_ms:
                self._apply(member, Event.SUSPICION_TIMEOUT, now_ms)
                continue
            if member.state not in (State.DEAD, State.LEFT):
                continue
            unconfirmed = (
                self.unconfirmed_timeout_ms
                and member_id not in self.confirmed
                and down_ms >= self.unconfirmed_timeout_ms
                and not wrote(member_id)
            )
            timed_out = self.member_timeout_ms and down_ms >= self.member_timeout_ms
            if not (unconfirmed or timed_out):
                continue
            if member.state is State.DEAD:
                if majority is None:
                    majority = self.sees_majority(wrote)
                if not majority:
                    continue
            expired.append(member_id)
        return expired

    def sees_majority(self, wrote: Callable[[int], bool] = lambda _: True) -> bool:
        """Whether more than half of the members (this node included) are up, counting
        those a probe of this node reached once or whose writes it holds: a made-up id
        must not dilute the majority, nor a real member a node has not probed yet (just
        upgraded, or restarted in a partition) be left out of it."""
        real = [
            m
            for m in self.members.values()
            if m.state is not State.REMOVED
            and m.id != self.me.id
            and (m.id in self.confirmed or wrote(m.id))
        ]
        up = 1 + sum(1 for m in real if m.up)
        return 2 * up > 1 + len(real)

    def remove(self, member_id: int, now_ms: int) -> None:
        member = self.members.get(member_id) or Member(member_id, "")
        if not self._apply(member, Event.REMOVED, now_ms):
            self._set(replace(member, state=State.REMOVED), now_ms)
