"""Namespace ids and the reserved namespace that holds namespaces.

Namespaces are records, so they replicate like data: the record for namespace
N lives in the reserved namespace (16 zero bytes) under the key N (32 hex
characters) with the title as its value. A deleted namespace is a tombstone
there, which outranks any concurrent rename (see ``version.rank``) and is
never purged, so an id is never reused.
"""

from __future__ import annotations

import functools
import re

RESERVED_NAMESPACE = bytes(16)  # the namespaces themselves
MEMBERS_NAMESPACE = bytes(15) + b"\x01"  # retirement records of removed members
ID_PATTERN = re.compile(r"[0-9a-f]{32}")


def is_reserved(namespace: bytes) -> bool:
    """Rumor's own namespaces (16 bytes starting with 15 zeros): never listed, never purged."""
    return namespace[:15] == RESERVED_NAMESPACE[:15]


def id_bytes(namespace_id: str) -> bytes | None:
    """The 16 raw bytes of a well-formed namespace id, or None."""
    if ID_PATTERN.fullmatch(namespace_id) is None:
        return None
    raw = bytes.fromhex(namespace_id)
    return None if is_reserved(raw) else raw


@functools.lru_cache(maxsize=1024)
def cached_id_bytes(namespace_id: str) -> bytes | None:
    """``id_bytes``, remembered for the ids seen last: every request names its namespace."""
    return id_bytes(namespace_id)


def id_text(raw: bytes) -> str:
    return raw.hex()


def new_id(random16: bytes) -> str:
    """A namespace id from 16 random bytes (the caller supplies the randomness)."""
    if len(random16) != 16:
        raise ValueError("a namespace id needs 16 random bytes")
    return random16.hex()
