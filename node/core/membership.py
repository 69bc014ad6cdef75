"""Membership states and the rule for merging what nodes say about each other (SWIM).

A member is (id, address, incarnation, state, boot nonce). Only the member
itself raises its incarnation, to refute a suspicion. Merge rule, as a total
order so every node settles on the same view: a removed member stays removed;
otherwise the higher incarnation wins, and at equal incarnation the graver
state wins (alive < suspect < left < dead). "left" is announced by a node
stopping cleanly: it means down, not gone; only a removal (``rumor admin
remove-node``, or --member-timeout of dead time) takes a member out of the
GC's count, and a removed id is refused for ever.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class State(enum.IntEnum):
    ALIVE = 0
    SUSPECT = 1
    DEAD = 2
    LEFT = 3
    REMOVED = 4


_GRAVITY = {State.ALIVE: 0, State.SUSPECT: 1, State.LEFT: 2, State.DEAD: 3, State.REMOVED: 4}


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    address: str
    incarnation: int = 0
    state: State = State.ALIVE
    boot_nonce: int = 0
    name: str = ""

    @property
    def up(self) -> bool:
        """Worth sending to: alive, or suspected but not yet declared dead."""
        return self.state in (State.ALIVE, State.SUSPECT)


def supersedes(new: Member, old: Member | None) -> bool:
    """True when ``new`` should replace ``old`` in the member table."""
    if old is None:
        return True
    if old.state is State.REMOVED:
        return False
    if new.state is State.REMOVED:
        return True
    if new.incarnation != old.incarnation:
        return new.incarnation > old.incarnation
    if new.state != old.state:
        return _GRAVITY[new.state] > _GRAVITY[old.state]
    # Same incarnation and state: a newer boot of the member, or a new address.
    return (new.boot_nonce, new.address) != (old.boot_nonce, old.address) and (
        new.boot_nonce > old.boot_nonce
    )
