"""The structural rules every replicated record keeps, whoever sent it.

Theory of operation. A record that arrives from a peer is untrusted input: a
bug or a corrupt disk elsewhere must not crash this node later (a namespace
record whose key is not an id, a header that does not decode) or plant a
record that nothing can read back. ``check`` is the one test: it returns the
decoded header of a well-formed record, or raises ``MalformedRecord`` naming
the first rule broken. The replica runs it on every record of a message
before applying any, and on every record before serving it to a peer.

Rules:
- Structural only: the shape of the bytes and the limits of the data model.
  Never the rules of a client write (minimum TTL, an expiration in the past),
  which depend on the clock and the configuration of the node that accepted
  the write: a record written under older rules still replicates.
- Pure: no clock, no store, no configuration.
- Rumor's own namespaces keep their own key shapes (a namespace id, a member
  id); a reserved namespace this version does not know follows the general
  rules, so a newer node's records still pass through an older one.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rumor.node.core.namespaces import MEMBERS_NAMESPACE, RESERVED_NAMESPACE, id_bytes
from rumor.node.core.record import HEADER_FIXED_SIZE, CorruptRecord, RecordHeader
from rumor.node.core.validation import MAX_KEY_BYTES, MAX_METADATA_BYTES, MAX_VALUE_BYTES

NAMESPACE_BYTES = 16
MAX_SEQ = (1 << 63) - 1  # seqs and watermarks travel as signed 64-bit integers somewhere
_MEMBER_KEY = re.compile(rb"[0-9a-f]{16}")


class MalformedRecord(ValueError):
    """A record that breaks a structural rule; ``str()`` names the rule."""


def check(namespace: bytes, key: bytes, header: bytes, value: bytes) -> RecordHeader:
    """The decoded header of a well-formed record; MalformedRecord otherwise."""
    if len(namespace) != NAMESPACE_BYTES:
        raise MalformedRecord(f"namespace is {len(namespace)} bytes, not {NAMESPACE_BYTES}")
    _check_key(namespace, key)
    try:
        decoded = RecordHeader.decode(header)
    except CorruptRecord as error:
        raise MalformedRecord(f"header does not decode: {error}") from None
    if decoded.metadata is None and len(header) != HEADER_FIXED_SIZE:
        raise MalformedRecord(f"header has {len(header) - HEADER_FIXED_SIZE} stray bytes")
    if decoded.origin == 0:
        raise MalformedRecord("origin is 0")
    if decoded.seq < 1:
        raise MalformedRecord("seq is 0")
    if decoded.tombstone and (value or decoded.value_length):
        raise MalformedRecord("tombstone carries a value")
    if len(value) > MAX_VALUE_BYTES:
        raise MalformedRecord(f"value of {len(value)} bytes exceeds {MAX_VALUE_BYTES}")
    if len(value) != decoded.value_length:
        raise MalformedRecord(
            f"value is {len(value)} bytes, the header says {decoded.value_length}"
        )
    if decoded.metadata is not None:
        _check_metadata(decoded.metadata)
    return decoded


def well_formed(namespace: bytes, key: bytes, header: bytes, value: bytes) -> bool:
    try:
        check(namespace, key, header, value)
    except MalformedRecord:
        return False
    return True


def coverage_fault(origin: int, base: int, last: int) -> str | None:
    """The structural rule a coverage claim (origin, base, last] breaks, or None."""
    if origin == 0:
        return "claim for origin 0"
    if not 0 <= base <= last:
        return f"claim from {base} to {last} is not a range"
    if last > MAX_SEQ:
        return f"claim up to {last} is not below 2^63"
    return None


def _check_key(namespace: bytes, key: bytes) -> None:
    if namespace == RESERVED_NAMESPACE:
        if id_bytes(key.decode("ascii", "replace")) is None:
            raise MalformedRecord("namespace record's key is not a namespace id")
        return
    if namespace == MEMBERS_NAMESPACE:
        if _MEMBER_KEY.fullmatch(key) is None:
            raise MalformedRecord("member record's key is not a member id (16 hex digits)")
        return
    if not 1 <= len(key) <= MAX_KEY_BYTES:
        raise MalformedRecord(f"key is {len(key)} bytes, not 1 to {MAX_KEY_BYTES}")
    if key in (b".", b".."):
        raise MalformedRecord(f"key is {key.decode()!r}")
    try:
        key.decode()
    except UnicodeDecodeError:
        raise MalformedRecord("key is not valid UTF-8") from None


def _check_metadata(metadata: bytes) -> None:
    if len(metadata) > MAX_METADATA_BYTES:
        raise MalformedRecord(f"metadata of {len(metadata)} bytes exceeds {MAX_METADATA_BYTES}")
    try:
        json.loads(metadata.decode(), parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise MalformedRecord("metadata is not valid UTF-8 JSON") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
