from rumor.v1 import replication_pb2 as _replication_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MemberStatus(_message.Message):
    __slots__ = ("member", "watermarks", "clock_offset_ms", "writes_refused")
    class WatermarksEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    WATERMARKS_FIELD_NUMBER: _ClassVar[int]
    CLOCK_OFFSET_MS_FIELD_NUMBER: _ClassVar[int]
    WRITES_REFUSED_FIELD_NUMBER: _ClassVar[int]
    member: _replication_pb2.Member
    watermarks: _containers.ScalarMap[int, int]
    clock_offset_ms: float
    writes_refused: str
    def __init__(self, member: _Optional[_Union[_replication_pb2.Member, _Mapping]] = ..., watermarks: _Optional[_Mapping[int, int]] = ..., clock_offset_ms: _Optional[float] = ..., writes_refused: _Optional[str] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("node_id", "name", "address", "hlc", "watermarks", "members", "audit_buckets", "audit_digest", "records_held", "tombstones_held", "ready", "fenced", "audit_repairs_total", "deferred_records", "push_queue_drops", "pushes_sent", "push_bytes_received", "exchanges", "exchange_bytes_received", "records_applied_remote", "max_event_loop_lag_ms", "admin_token_file", "not_ready", "writes_refused", "disk_full")
    class WatermarksEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HLC_FIELD_NUMBER: _ClassVar[int]
    WATERMARKS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    RECORDS_HELD_FIELD_NUMBER: _ClassVar[int]
    TOMBSTONES_HELD_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    FENCED_FIELD_NUMBER: _ClassVar[int]
    AUDIT_REPAIRS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DEFERRED_RECORDS_FIELD_NUMBER: _ClassVar[int]
    PUSH_QUEUE_DROPS_FIELD_NUMBER: _ClassVar[int]
    PUSHES_SENT_FIELD_NUMBER: _ClassVar[int]
    PUSH_BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    EXCHANGES_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    RECORDS_APPLIED_REMOTE_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENT_LOOP_LAG_MS_FIELD_NUMBER: _ClassVar[int]
    ADMIN_TOKEN_FILE_FIELD_NUMBER: _ClassVar[int]
    NOT_READY_FIELD_NUMBER: _ClassVar[int]
    WRITES_REFUSED_FIELD_NUMBER: _ClassVar[int]
    DISK_FULL_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    name: str
    address: str
    hlc: int
    watermarks: _containers.ScalarMap[int, int]
    members: _containers.RepeatedCompositeFieldContainer[MemberStatus]
    audit_buckets: bytes
    audit_digest: int
    records_held: int
    tombstones_held: int
    ready: bool
    fenced: bool
    audit_repairs_total: int
    deferred_records: int
    push_queue_drops: int
    pushes_sent: int
    push_bytes_received: int
    exchanges: int
    exchange_bytes_received: int
    records_applied_remote: int
    max_event_loop_lag_ms: float
    admin_token_file: str
    not_ready: str
    writes_refused: str
    disk_full: bool
    def __init__(self, node_id: _Optional[int] = ..., name: _Optional[str] = ..., address: _Optional[str] = ..., hlc: _Optional[int] = ..., watermarks: _Optional[_Mapping[int, int]] = ..., members: _Optional[_Iterable[_Union[MemberStatus, _Mapping]]] = ..., audit_buckets: _Optional[bytes] = ..., audit_digest: _Optional[int] = ..., records_held: _Optional[int] = ..., tombstones_held: _Optional[int] = ..., ready: _Optional[bool] = ..., fenced: _Optional[bool] = ..., audit_repairs_total: _Optional[int] = ..., deferred_records: _Optional[int] = ..., push_queue_drops: _Optional[int] = ..., pushes_sent: _Optional[int] = ..., push_bytes_received: _Optional[int] = ..., exchanges: _Optional[int] = ..., exchange_bytes_received: _Optional[int] = ..., records_applied_remote: _Optional[int] = ..., max_event_loop_lag_ms: _Optional[float] = ..., admin_token_file: _Optional[str] = ..., not_ready: _Optional[str] = ..., writes_refused: _Optional[str] = ..., disk_full: _Optional[bool] = ...) -> None: ...

class RecordsRequest(_message.Message):
    __slots__ = ("namespace_id",)
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    namespace_id: str
    def __init__(self, namespace_id: _Optional[str] = ...) -> None: ...

class RecordInfo(_message.Message):
    __slots__ = ("key", "hlc", "origin", "seq", "tombstone", "expiration")
    KEY_FIELD_NUMBER: _ClassVar[int]
    HLC_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TOMBSTONE_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    hlc: int
    origin: int
    seq: int
    tombstone: bool
    expiration: int
    def __init__(self, key: _Optional[bytes] = ..., hlc: _Optional[int] = ..., origin: _Optional[int] = ..., seq: _Optional[int] = ..., tombstone: _Optional[bool] = ..., expiration: _Optional[int] = ...) -> None: ...

class CheckpointRequest(_message.Message):
    __slots__ = ("directory",)
    DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    directory: str
    def __init__(self, directory: _Optional[str] = ...) -> None: ...

class CheckpointResponse(_message.Message):
    __slots__ = ("directory",)
    DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    directory: str
    def __init__(self, directory: _Optional[str] = ...) -> None: ...

class DrainRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DrainResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BackupRequest(_message.Message):
    __slots__ = ("have",)
    HAVE_FIELD_NUMBER: _ClassVar[int]
    have: _containers.RepeatedCompositeFieldContainer[_replication_pb2.SnapshotFile]
    def __init__(self, have: _Optional[_Iterable[_Union[_replication_pb2.SnapshotFile, _Mapping]]] = ...) -> None: ...

class BackupInfo(_message.Message):
    __slots__ = ("node_id", "name", "address", "hlc", "watermarks", "members", "taken_ms")
    class WatermarksEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HLC_FIELD_NUMBER: _ClassVar[int]
    WATERMARKS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    TAKEN_MS_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    name: str
    address: str
    hlc: int
    watermarks: _containers.ScalarMap[int, int]
    members: _containers.RepeatedScalarFieldContainer[int]
    taken_ms: int
    def __init__(self, node_id: _Optional[int] = ..., name: _Optional[str] = ..., address: _Optional[str] = ..., hlc: _Optional[int] = ..., watermarks: _Optional[_Mapping[int, int]] = ..., members: _Optional[_Iterable[int]] = ..., taken_ms: _Optional[int] = ...) -> None: ...

class BackupChunk(_message.Message):
    __slots__ = ("info", "chunk")
    INFO_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    info: BackupInfo
    chunk: _replication_pb2.SnapshotChunk
    def __init__(self, info: _Optional[_Union[BackupInfo, _Mapping]] = ..., chunk: _Optional[_Union[_replication_pb2.SnapshotChunk, _Mapping]] = ...) -> None: ...

class RemoveNodeRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    def __init__(self, node_id: _Optional[int] = ...) -> None: ...

class RemoveNodeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
