"""Hybrid logical clock.

A timestamp is one 64-bit integer: 48 bits of wall-clock milliseconds above a
16-bit counter. Because the counter sits in the low bits, "the next timestamp"
is simply ``last + 1``, and a counter overflow carries into the millisecond
part by itself.

Rules:
- ``tick(wall_ms)`` stamps a local event: max(wall << 16, last + 1).
- ``merge(remote, wall_ms)`` stamps the receipt of a message carrying a
  remote timestamp: max(wall << 16, last + 1, remote + 1). Afterwards every
  timestamp this clock issues is greater than ``remote``.
- ``observe(remote)`` only raises the floor (no new timestamp is issued).
- ``ticks(last, wall_ms, n)`` are the n timestamps n ticks would issue, without a clock.
The clock never goes backwards, whatever the wall clock does.
"""

from __future__ import annotations

from dataclasses import dataclass

COUNTER_BITS = 16
COUNTER_MASK = (1 << COUNTER_BITS) - 1
MAX_TIMESTAMP = (1 << 64) - 1


def pack(wall_ms: int, counter: int) -> int:
    """Build a timestamp from its two parts."""
    return (wall_ms << COUNTER_BITS) | (counter & COUNTER_MASK)


def wall_ms_of(timestamp: int) -> int:
    """The millisecond part of a timestamp."""
    return timestamp >> COUNTER_BITS


def counter_of(timestamp: int) -> int:
    """The logical counter part of a timestamp."""
    return timestamp & COUNTER_MASK


def ticks(last: int, wall_ms: int, count: int) -> range:
    """The timestamps ``count`` ticks at ``wall_ms`` issue after ``last``, in order.

    The first is max(wall << 16, last + 1); each later one is the previous + 1.
    """
    first = max(wall_ms << COUNTER_BITS, last + 1)
    return range(first, first + count)


@dataclass(slots=True)
class HybridClock:
    """A hybrid logical clock; ``last`` is the greatest timestamp issued or seen."""

    last: int = 0

    def tick(self, wall_ms: int) -> int:
        """Issue a timestamp for a local event at wall time ``wall_ms``."""
        candidate = wall_ms << COUNTER_BITS
        self.last = candidate if candidate > self.last else self.last + 1
        return self.last

    def merge(self, remote: int, wall_ms: int) -> int:
        """Issue a timestamp for receiving a message stamped ``remote``."""
        self.last = max(wall_ms << COUNTER_BITS, self.last + 1, remote + 1)
        return self.last

    def observe(self, remote: int) -> None:
        """Make every later timestamp greater than ``remote``."""
        self.last = max(self.last, remote)

    def read_ms(self, wall_ms: int) -> int:
        """max(wall clock, HLC) in milliseconds, as clock fencing judges it."""
        return max(wall_ms, wall_ms_of(self.last))
