"""Staleness: how far behind the alive members this node knows it may be, in milliseconds.

Every message a member sends carries its own durable watermark: every write
it made up to that seq can be had. This node keeps, per member, samples
(seq, when heard). Once its own watermark for the member reaches a sample's
seq, it holds everything the member could give as of that moment, so its lag
behind the member is at most ``now - then`` (plus the message's transit, which
it does not know). Its lag bound is the largest over the members that may be
alive (the engine says which); a member it never caught up with makes the
bound unknown (None).

Rules:
- Time is the driver's monotonic milliseconds, passed in.
- Samples per member are bounded; past the bound the newest is replaced, so a
  bound is never smaller than the truth, only coarser.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

MAX_SAMPLES = 32


@dataclass(slots=True)
class _Member:
    samples: list[tuple[int, int]] = field(default_factory=list)  # (seq, heard at), increasing
    covered_at: int | None = None  # when heard: the latest sample this node has covered


class Staleness:
    def __init__(self) -> None:
        self._members: dict[int, _Member] = {}

    def heard(self, member: int, seq: int, mono_ms: int) -> None:
        """``member`` said at ``mono_ms`` that its writes up to ``seq`` can be had."""
        state = self._members.setdefault(member, _Member())
        samples = state.samples
        if samples and samples[-1][0] >= seq:
            if samples[-1][0] == seq:  # nothing new since: the same state, heard later
                samples[-1] = (seq, mono_ms)
            return  # (lower: an older message overtaken by a newer one)
        if len(samples) >= MAX_SAMPLES:
            samples[-1] = (seq, mono_ms)
        else:
            samples.append((seq, mono_ms))

    def forget(self, member: int) -> None:
        self._members.pop(member, None)

    def bound_ms(
        self, now_ms: int, alive: Iterable[int], watermark: Callable[[int], int]
    ) -> int | None:
        """The most this node may lag any of ``alive``; None when it cannot say."""
        worst = 0
        for member in alive:
            state = self._members.get(member)
            if state is None:
                return None
            mark = watermark(member)
            covered = 0
            for seq, _ in state.samples:
                if seq > mark:
                    break
                covered += 1
            if covered:
                state.covered_at = state.samples[covered - 1][1]
                # Keep the covered sample: the same seq heard again later moves it forward.
                del state.samples[: covered - 1]
            if state.covered_at is None:
                return None
            worst = max(worst, now_ms - state.covered_at)
        return worst
