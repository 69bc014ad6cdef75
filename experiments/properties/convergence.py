"""Convergence: after the heal, every node ends with the same audit digest, within a bound.

The audit digest covers every record a node holds, tombstones included
(docs/ALGORITHM.md, "Audit"), so equal digests mean the replicas hold the
same records: eventual consistency, exactly. The observer says how long after
the heal the digests became equal (``None``: not within the bound).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

NAME = "convergence"


@dataclass(frozen=True, slots=True)
class Convergence:
    """The final digests, grouped, and how long they took to become equal."""

    missing: tuple[str, ...]  # nodes without a final digest
    groups: dict[int, list[str]] = field(default_factory=dict)  # digest -> nodes, largest first
    took_s: float | None = None
    bound_s: float = 0.0

    @property
    def agree(self) -> bool:
        """Every node has a digest and all are equal."""
        return not self.missing and len(self.groups) <= 1

    @property
    def in_time(self) -> bool:
        return self.took_s is not None and self.took_s <= self.bound_s

    @property
    def ok(self) -> bool:
        return self.agree and self.in_time


def convergence(
    digests: Mapping[str, int | None], took_s: float | None, bound_s: float
) -> Convergence:
    """Judge the final ``digests`` (node -> digest, None: not known), reached after ``took_s``."""
    missing = tuple(node for node, digest in digests.items() if digest is None)
    by_digest: dict[int, list[str]] = defaultdict(list)
    for node, digest in digests.items():
        if digest is not None:
            by_digest[digest].append(node)
    groups = dict(sorted(by_digest.items(), key=lambda item: -len(item[1])))
    return Convergence(missing, groups, took_s, bound_s)
