"""What replication messages carry, as plain values (no protobuf, no grpc).

A ``WireRecord`` is a record as stored: namespace, key, the encoded header and
the value, so a node forwards what it holds without re-encoding it. A
``Delta`` is a batch of records plus, per origin, the ``Coverage`` claim that
lets the receiver advance its watermark (anti-entropy answers and push-backs
carry one; epidemic pushes carry none).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import NamedTuple

from rumor.node.core.record import RecordHeader

_FIXED = struct.Struct(">QQQ")  # hlc, origin, seq: the first fields of an encoded header
_WIRE_LENGTHS = struct.Struct(">HI")


class WireRecord(NamedTuple):
    namespace: bytes
    key: bytes
    header: bytes
    value: bytes = b""

    @property
    def stored_key(self) -> bytes:
        return self.namespace + self.key

    def ids(self) -> tuple[int, int, int]:
        """(hlc, origin, seq) without decoding the rest of the header."""
        hlc, origin, seq = _FIXED.unpack_from(self.header)
        return int(hlc), int(origin), int(seq)

    def decoded(self) -> RecordHeader:
        return RecordHeader.decode(self.header)

    def size(self) -> int:
        return len(self.namespace) + len(self.key) + len(self.header) + len(self.value) + 16

    def encode(self) -> bytes:
        """One byte string (for the deferred column family)."""
        return (
            self.namespace
            + _WIRE_LENGTHS.pack(len(self.key), len(self.header))
            + self.key
            + self.header
            + self.value
        )

    @classmethod
    def decode(cls, data: bytes) -> WireRecord:
        namespace = data[:16]
        key_length, header_length = _WIRE_LENGTHS.unpack_from(data, 16)
        start = 16 + _WIRE_LENGTHS.size
        key = data[start : start + key_length]
        header = data[start + key_length : start + key_length + header_length]
        value = data[start + key_length + header_length :]
        return cls(bytes(namespace), bytes(key), bytes(header), bytes(value))


@dataclass(frozen=True, slots=True)
class Coverage:
    """For one origin: every seq in (base, last] is accounted for by the records sent.

    ``complete``: nothing above ``last`` was left out, so ``last`` is the sender's
    watermark, and the receiver sets wm[origin] = max(wm[origin], last). Otherwise
    the answer was cut short at ``last``, and the claim is only provisional: a seq
    it vouches for may have been replaced by a record of an origin the answer did
    not reach. Within a synchronisation it shapes the next digest, and becomes a
    watermark with the claims of the round that completes it; outside one it is
    dropped (see ``remote_apply``).
    """

    origin: int
    base: int
    last: int
    complete: bool


@dataclass(frozen=True, slots=True)
class Delta:
    records: list[WireRecord] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return all(c.complete for c in self.coverage)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    stored_key: bytes
    hlc: int
    origin: int
    seq: int
    tombstone: bool
    expiration: int
