"""The one vocabulary of faults, shared by the lab's scenarios and the simulator's schedules.

A fault is a window: something breaks at its start and is healed at its end
(the lab's scenarios end one with a recovery action or ``heal``; the
simulator's schedules give it a duration). Each observer injects the kinds it
can: the lab through the node's Faults service and the OS, the simulator
through its network, clocks, disks and cluster (``lab.scenario.LAB_FAULTS``
and the tables of ``sim.schedule`` and ``sim.execution`` say which).

Earlier spellings stay accepted, so that scenario files, saved schedules and
commands keep working: ``oneway`` is ``block``, ``clock_offset`` is ``skew``,
``kill`` is ``crash`` (``FaultKind.parse``).
"""

from __future__ import annotations

from enum import StrEnum


class FaultKind(StrEnum):
    PARTITION = "partition"  # groups cut apart, both ways
    SPLIT = "split"  # groups that start apart and must merge when it heals
    BLOCK = "block"  # one node's calls to some peers cut (one way, or both)
    ISOLATE = "isolate"  # one node cut off from every other (a real cut under netns)
    LOSS = "loss"  # a share of every message lost (and, in the lab, some delayed)
    DELAY = "delay"  # extra latency on what one node sends
    SKEW = "skew"  # one node's wall clock (and so its HLC) off by an offset
    FAKETIME = "faketime"  # a node restarted under libfaketime: real skew
    CRASH = "crash"  # the process killed (SIGKILL), restarted later on its disk
    PAUSE = "pause"  # the process stopped (SIGSTOP) and resumed
    POWER = "power"  # power lost: what was not synced is gone
    JOIN = "join"  # a new node joins
    RESTORE = "restore"  # a node restarted on a stale copy of its own disk
    REMOVE = "remove"  # a member removed by another
    DUPLICATE = "duplicate"  # a copy of a live node's disk started elsewhere
    FORGE = "forge"  # a forged message claims every seq of an origin
    SNAPJOIN = "snapjoin"  # a fresh node joins by snapshot while deletes go on
    STALE_BACKUP = "stale_backup"  # a node's disk lost, a stale backup of it restored
    REPLACE = "replace"  # a fresh process (new id, empty disk) takes a node's address at once
    RETURN = "return"  # a node down past the member timeout comes back on its old disk

    @classmethod
    def parse(cls, text: str) -> FaultKind:
        """A kind from its name or an earlier spelling; ValueError names the known ones."""
        name = ALIASES.get(text, text)
        try:
            return cls(name)
        except ValueError:
            known = ", ".join(kind.value for kind in cls)
            raise ValueError(f"unknown fault kind {text!r}; use one of {known}") from None


#: Earlier spellings, still accepted.
ALIASES: dict[str, str] = {
    "oneway": FaultKind.BLOCK.value,
    "clock_offset": FaultKind.SKEW.value,
    "kill": FaultKind.CRASH.value,
}

#: Faults of the network: links cut, messages lost or late.
NETWORK: frozenset[FaultKind] = frozenset(
    {
        FaultKind.PARTITION,
        FaultKind.SPLIT,
        FaultKind.BLOCK,
        FaultKind.ISOLATE,
        FaultKind.LOSS,
        FaultKind.DELAY,
    }
)

#: Faults that take a node's data down or away (its process, its disk, its membership).
DATA: frozenset[FaultKind] = frozenset(
    {
        FaultKind.CRASH,
        FaultKind.POWER,
        FaultKind.RESTORE,
        FaultKind.REMOVE,
        FaultKind.STALE_BACKUP,
        FaultKind.REPLACE,
        FaultKind.RETURN,
    }
)
