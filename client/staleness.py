"""Bounded staleness in the SDK: ``max_staleness_ms`` on reads, and the lag bound of answers.

A read given ``max_staleness_ms=N`` is answered only by a node that knows it
lags every alive member by less than N ms; any other node answers UNAVAILABLE
naming its bound, and the client fails over to its next endpoint as for any
unavailable node. Every read answer carries the node's current lag bound —
the trailing metadata key ``rumor-lag-bound-ms`` of a unary call, a Batch
result's ``lag_bound_ms`` — "unknown" when the node cannot say. The SDK keeps
the latest one on the namespace object that read (``KVNamespace.lag_bound_ms``).

No I/O here: checking the argument, stamping a request, reading an answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

LAG_BOUND_KEY = "rumor-lag-bound-ms"
# The gRPC field is a uint32.
MAX_STALENESS_MS = 2**32 - 1


def checked(max_staleness_ms: object) -> int:
    """``max_staleness_ms`` as the request carries it; TypeError or ValueError if it is
    not a whole number of milliseconds the field can hold (nothing is sent)."""
    if isinstance(max_staleness_ms, bool) or not isinstance(max_staleness_ms, int):
        raise TypeError(f"max_staleness_ms must be an int, not {type(max_staleness_ms).__name__}")
    if not 0 <= max_staleness_ms <= MAX_STALENESS_MS:
        raise ValueError(
            f"max_staleness_ms must be between 0 and {MAX_STALENESS_MS}, not {max_staleness_ms}"
        )
    return max_staleness_ms


def stamp(request: Any, max_staleness_ms: int | None) -> Any:
    """``request`` bounded by ``max_staleness_ms`` (None: unbounded, left as it is)."""
    if max_staleness_ms is not None:
        request.max_staleness_ms = checked(max_staleness_ms)
    return request


def lag_bound_of(text: str) -> int | None:
    """A lag bound as a node reports it: milliseconds, or None ("unknown", or absent)."""
    return int(text) if text.isdigit() else None


def lag_bound_in(metadata: Iterable[Any] | None) -> int | None:
    """The lag bound in a unary call's trailing metadata (None when absent or unknown)."""
    for key, value in metadata or ():
        if key == LAG_BOUND_KEY:
            return lag_bound_of(value)
    return None


# What a read hands its answer's lag bound to (``Client.run``'s ``on_lag``).
LagReport = Callable[[int | None], None]
