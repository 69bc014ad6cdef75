"""The values the SDK returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class NamespaceInfo:
    """A namespace: its random 32-hex id and its title."""

    id: str
    title: str


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key in a listing: its name, absolute expiration (or None) and metadata (or None)."""

    name: str
    expiration: int | None = None
    metadata: Any = None


@dataclass(frozen=True, slots=True)
class ListResult:
    """One page of a listing. ``cursor`` continues it; it is None once ``list_complete``."""

    keys: list[KeyInfo]
    list_complete: bool
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class NamespacePage:
    """One page of namespaces, in id order. ``cursor`` continues it; None once
    ``list_complete``."""

    namespaces: list[NamespaceInfo]
    list_complete: bool
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class ValueWithMetadata:
    """A value and its metadata; both None when the key is missing."""

    value: Any
    metadata: Any


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Where a write landed: its version (hlc, origin) and the origin's seq."""

    hlc: int
    origin: int
    seq: int
    expiration: int | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One change a node applied, from ``watch``: a put, a delete (``deleted``), or,
    with ``fell_behind``, a notice that ``dropped`` changes were lost to a slow reader."""

    key: str
    hlc: int = 0
    origin: int = 0
    seq: int = 0
    deleted: bool = False
    expiration: int | None = None
    applied_wall_ms: int = 0
    applied_monotonic_ns: int = 0
    local: bool = False
    fell_behind: bool = False
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class Listeners:
    """Where a node serves: its gRPC address and its HTTP listener (None when it has none)."""

    grpc: str
    http: str | None
