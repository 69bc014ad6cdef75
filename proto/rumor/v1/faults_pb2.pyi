from rumor.v1 import replication_pb2 as _replication_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_BOTH: _ClassVar[Direction]
    DIRECTION_OUTBOUND: _ClassVar[Direction]
    DIRECTION_INBOUND: _ClassVar[Direction]
DIRECTION_BOTH: Direction
DIRECTION_OUTBOUND: Direction
DIRECTION_INBOUND: Direction

class BlockRequest(_message.Message):
    __slots__ = ("peers", "direction")
    PEERS_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    peers: _containers.RepeatedScalarFieldContainer[int]
    direction: Direction
    def __init__(self, peers: _Optional[_Iterable[int]] = ..., direction: _Optional[_Union[Direction, str]] = ...) -> None: ...

class LossRequest(_message.Message):
    __slots__ = ("drop_fraction", "delay_fraction", "delay_ms")
    DROP_FRACTION_FIELD_NUMBER: _ClassVar[int]
    DELAY_FRACTION_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    drop_fraction: float
    delay_fraction: float
    delay_ms: int
    def __init__(self, drop_fraction: _Optional[float] = ..., delay_fraction: _Optional[float] = ..., delay_ms: _Optional[int] = ...) -> None: ...

class ClockOffsetRequest(_message.Message):
    __slots__ = ("offset_ms",)
    OFFSET_MS_FIELD_NUMBER: _ClassVar[int]
    offset_ms: int
    def __init__(self, offset_ms: _Optional[int] = ...) -> None: ...

class PlantRequest(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: _replication_pb2.Record
    def __init__(self, record: _Optional[_Union[_replication_pb2.Record, _Mapping]] = ...) -> None: ...

class FaultState(_message.Message):
    __slots__ = ("blocked_outbound", "blocked_inbound", "all_outbound_blocked", "all_inbound_blocked", "drop_fraction", "delay_fraction", "delay_ms", "clock_offset_ms")
    BLOCKED_OUTBOUND_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_INBOUND_FIELD_NUMBER: _ClassVar[int]
    ALL_OUTBOUND_BLOCKED_FIELD_NUMBER: _ClassVar[int]
    ALL_INBOUND_BLOCKED_FIELD_NUMBER: _ClassVar[int]
    DROP_FRACTION_FIELD_NUMBER: _ClassVar[int]
    DELAY_FRACTION_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    CLOCK_OFFSET_MS_FIELD_NUMBER: _ClassVar[int]
    blocked_outbound: _containers.RepeatedScalarFieldContainer[int]
    blocked_inbound: _containers.RepeatedScalarFieldContainer[int]
    all_outbound_blocked: bool
    all_inbound_blocked: bool
    drop_fraction: float
    delay_fraction: float
    delay_ms: int
    clock_offset_ms: int
    def __init__(self, blocked_outbound: _Optional[_Iterable[int]] = ..., blocked_inbound: _Optional[_Iterable[int]] = ..., all_outbound_blocked: _Optional[bool] = ..., all_inbound_blocked: _Optional[bool] = ..., drop_fraction: _Optional[float] = ..., delay_fraction: _Optional[float] = ..., delay_ms: _Optional[int] = ..., clock_offset_ms: _Optional[int] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
