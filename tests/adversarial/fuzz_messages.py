"""Requests no honest client sends, built from the services' descriptors.

``undecodable`` bytes fail to parse as any protobuf message (wire type 7 does
not exist); ``random_bytes`` often do parse, into nonsense; ``extreme`` fills
every field of a message with an extreme value (the largest integers, huge
strings, invalid UTF-8 bytes, thousands of repeated entries). String fields
named like an address are pinned to an unreachable loopback port, so no
fuzzed request makes the node dial anything outside 127.0.0.0/8.
"""

from __future__ import annotations

import random

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message

UNREACHABLE = "127.0.0.1:1"
_INTS = {
    FieldDescriptor.TYPE_UINT64: (0, 1, 2**64 - 1, 2**63),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), -1, 0, 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_INT32: (-(2**31), -1, 0, 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
}
_STRINGS = ("", "\x00", "../../etc", "é" * 300, "ns", "\u202e")
_BYTES = (b"", b"\xff\xfe", b"\x00" * 600, b".", b"..")
# One of these per message at most: thousands of them would only test the 128 MiB limit.
_HUGE_STRING, _HUGE_BYTES = "k" * 70_000, b"x" * 300_000


def undecodable(rng: random.Random) -> bytes:
    return b"\x0f" + rng.randbytes(rng.randrange(0, 64))  # field 1, wire type 7: invalid


def random_bytes(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice((1, 3, 17, 200, 4000)))


def _value(field: FieldDescriptor, rng: random.Random, depth: int, huge: bool = False) -> object:
    if field.message_type is not None:
        return extreme(field.message_type, rng, depth + 1)
    if field.type == FieldDescriptor.TYPE_STRING:
        if "address" in field.name:
            return UNREACHABLE
        return _HUGE_STRING if huge else rng.choice(_STRINGS)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return _HUGE_BYTES if huge else rng.choice(_BYTES)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    if field.enum_type is not None:
        return rng.choice([v.number for v in field.enum_type.values] + [2**31 - 1])
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return rng.choice((0.0, -1.0, 1e308, float("inf"), float("nan")))
    return rng.choice(_INTS[field.type])


def extreme(descriptor: Descriptor, rng: random.Random, depth: int = 0) -> Message:
    message = message_factory.GetMessageClass(descriptor)()
    if depth > 2:
        return message
    for field in descriptor.fields:
        if rng.random() < 0.3:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            continue
        if field.is_repeated:
            count = rng.choice((0, 1, 3, 2000 if depth == 0 else 3))
            container = getattr(message, field.name)
            for _ in range(count):
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    container.add().CopyFrom(_value(field, rng, depth))
                else:
                    container.append(_value(field, rng, depth))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(message, field.name).CopyFrom(_value(field, rng, depth))
        else:
            huge = depth == 0 and rng.random() < 0.1
            setattr(message, field.name, _value(field, rng, depth, huge=huge))
    return message


def path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"
