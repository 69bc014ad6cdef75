"""Membership states and the rule for merging what nodes say about each other (SWIM).

A member is (id, address, incarnation, state, boot nonce). Only the member
itself raises its incarnation, to refute a suspicion. Merge rule, as a total
order so every node settles on the same view: a removed member stays removed;
otherwise the higher incarnation wins, and at equal incarnation the graver
state wins (alive < suspect < left < dead). "left" is announced by a node
stopping cleanly: it means down, not gone; only a removal (``rumor admin
remove-node``, or the member timeout of left or dead time) takes a member out
of the GC's count, and a removed id is refused for ever.
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


class Event(enum.Enum):
    """What can happen to a member, as this node sees it (SWIM)."""

    PROBE_OK = "probe_ok"  # it answered a direct or an indirect probe
    PROBE_FAILED = "probe_failed"  # neither it nor the indirect probes reached it
    SUSPICION_TIMEOUT = "suspicion_timeout"  # suspected for the whole suspicion timeout
    HEARD_SAME_BOOT = "heard_same_boot"  # a message from the member itself, same process
    HEARD_NEW_BOOT = "heard_new_boot"  # a message from the member itself, a new process
    REMOVED = "removed"  # `rumor admin remove-node`, or the member timeout (left or dead)


# (state, event) -> (new state, raise the incarnation). A pair missing from the table
# changes nothing. Raising the incarnation makes this node's word beat the older news
# of suspicion or death that others still spread; only a member itself raises its own
# incarnation otherwise (to refute).
TRANSITIONS: dict[tuple[State, Event], tuple[State, bool]] = {
    (State.ALIVE, Event.PROBE_FAILED): (State.SUSPECT, False),
    (State.SUSPECT, Event.PROBE_OK): (State.ALIVE, True),
    (State.SUSPECT, Event.SUSPICION_TIMEOUT): (State.DEAD, False),
    (State.SUSPECT, Event.HEARD_SAME_BOOT): (State.ALIVE, True),
    (State.SUSPECT, Event.HEARD_NEW_BOOT): (State.ALIVE, True),
    (State.DEAD, Event.PROBE_OK): (State.ALIVE, True),
    (State.DEAD, Event.HEARD_SAME_BOOT): (State.ALIVE, True),
    (State.DEAD, Event.HEARD_NEW_BOOT): (State.ALIVE, True),
    # "left" is the last word of a stopping process: its own later messages do not
    # undo it, but a new process (a restart) is alive again.
    (State.LEFT, Event.HEARD_NEW_BOOT): (State.ALIVE, True),
    (State.ALIVE, Event.REMOVED): (State.REMOVED, False),
    (State.SUSPECT, Event.REMOVED): (State.REMOVED, False),
    (State.DEAD, Event.REMOVED): (State.REMOVED, False),
    (State.LEFT, Event.REMOVED): (State.REMOVED, False),
}


def transition(state: State, event: Event) -> tuple[State, bool] | None:
    """The new state (and whether to raise the incarnation), or None: no change."""
    return TRANSITIONS.get((state, event))
