"""Session tokens: what a client has written and read, as one short URL-safe string.

A token maps each origin (the id of the node that accepted a write) to the
highest seq of that origin's writes the client has written or read. A node
whose applied watermarks reach every entry holds each of those writes or
something newer of the same key, so reading there is read-your-writes and
monotonic reads.

Rules:
- ``merge`` is a join (commutative, associative, idempotent), so a client
  may fold answers into its token in any order, and two processes' tokens
  combine into one that covers both.
- The text form is opaque to clients: a format digit, then URL-safe base64
  (no padding) of the entries sorted by origin — the origin in 8 bytes, the
  seq as a LEB128 varint. Equal tokens encode equally. The format digit lets
  a later format keep reading this one; an unknown format is refused.
- The empty token ("1") is a session that has seen nothing yet.
- Pure: no I/O, used both by the SDK and by the node (which decodes ``after``
  and returns updated tokens), so there is one definition of the format.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

FORMAT_V1 = "1"
# Bounds what a node decodes per request: far more origins than any cluster has.
MAX_TOKEN_CHARS = 4096
_ORIGIN_BYTES = 8
_U64 = (1 << 64) - 1


class InvalidToken(ValueError):
    """The text is not a session token this version reads."""


@dataclass(frozen=True, slots=True)
class SessionToken:
    """Per origin, the highest seq a session has written or read (origins it touched)."""

    marks: Mapping[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, pairs: Iterable[tuple[int, int]]) -> SessionToken:
        """The token of these (origin, seq) pairs: per origin the maximum."""
        marks: dict[int, int] = {}
        for origin, seq in pairs:
            if seq > marks.get(origin, 0):
                marks[origin] = seq
        return cls(marks)

    def merge(self, other: SessionToken) -> SessionToken:
        """The least token that covers both (the join of the two)."""
        if not other.marks or other.marks == self.marks:
            return self
        if not self.marks:
            return other
        marks = dict(self.marks)
        for origin, seq in other.marks.items():
            if seq > marks.get(origin, 0):
                marks[origin] = seq
        return SessionToken(marks)

    def covers(self, other: SessionToken) -> bool:
        """True when every entry of ``other`` is at most this token's."""
        return all(self.marks.get(origin, 0) >= seq for origin, seq in other.marks.items())

    def encode(self) -> str:
        entries = b"".join(
            _entry(origin, self.marks[origin])
            for origin in sorted(self.marks)
            if self.marks[origin] > 0
        )
        return _text(entries)

    @classmethod
    def decode(cls, text: str) -> SessionToken:
        """The token ``text`` encodes; InvalidToken when it is not one."""
        if not text:
            return cls()
        if len(text) > MAX_TOKEN_CHARS:
            raise InvalidToken(f"a session token has at most {MAX_TOKEN_CHARS} characters")
        reader = _READERS.get(text[0])
        if reader is None:
            raise InvalidToken("not a session token this node reads (unknown format)")
        return cls(reader(text[1:]))


def encode_one(origin: int, seq: int) -> str:
    """``SessionToken({origin: seq}).encode()``, without building the token (every write
    answers one)."""
    return _text(_entry(origin, seq) if seq > 0 else b"")


def _entry(origin: int, seq: int) -> bytes:
    out = bytearray(origin.to_bytes(_ORIGIN_BYTES, "big"))
    while seq >= 0x80:
        out.append((seq & 0x7F) | 0x80)
        seq >>= 7
    out.append(seq)
    return bytes(out)


def _text(entries: bytes) -> str:
    return FORMAT_V1 + base64.urlsafe_b64encode(entries).rstrip(b"=").decode("ascii")


def _read_v1(body: str) -> dict[int, int]:
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidToken("a session token must be URL-safe base64") from None
    marks: dict[int, int] = {}
    offset = 0
    while offset < len(raw):
        if offset + _ORIGIN_BYTES >= len(raw):
            raise InvalidToken("a session token was cut short")
        origin = int.from_bytes(raw[offset : offset + _ORIGIN_BYTES], "big")
        offset += _ORIGIN_BYTES
        seq = 0
        shift = 0
        while True:
            if offset == len(raw) or shift > 63:
                raise InvalidToken("a session token holds a malformed seq")
            byte = raw[offset]
            offset += 1
            seq |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if seq > _U64:
            raise InvalidToken("a session token holds a malformed seq")
        if seq > marks.get(origin, 0):
            marks[origin] = seq
    return marks


# Every format this version reads, by its leading digit; a new format adds a reader
# and keeps the old ones.
_READERS = {FORMAT_V1: _read_v1}

EMPTY = SessionToken()
