"""What clients were told: every write issued, its version, and when it was acknowledged."""

from __future__ import annotations

from dataclasses import dataclass, field

from rumor.node.core.version import Version

NAMESPACE = bytes.fromhex("51a1a7ed51a1a7ed51a1a7ed51a1a7ed")


@dataclass(slots=True)
class ClientWrite:
    index: int  # in issue order
    slot: int  # the node (address) it was sent to
    key: bytes
    tombstone: bool
    expiration: int  # wall seconds; 0: never
    issued_ms: float
    version: Version
    acked_ms: float | None = None
    after_removal: bool = False  # acknowledged by a node already removed from the cluster
    alone: bool = False  # made by a node serving alone (no live member) at the time


@dataclass(slots=True)
class Ledger:
    writes: list[ClientWrite] = field(default_factory=list)
    refused: int = 0  # writes the engine refused (not serving, fenced, stopping)

    def acknowledge(self, writes: list[object], now_ms: float, removed: dict[int, float]) -> None:
        for write in writes:
            if not isinstance(write, ClientWrite):
                continue  # a write the caller does not track (the latency runs)
            write.acked_ms = now_ms
            removed_at = removed.get(write.slot)
            write.after_removal = removed_at is not None and removed_at <= now_ms

    @property
    def acknowledged(self) -> list[ClientWrite]:
        return [write for write in self.writes if write.acked_ms is not None]
