from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MemberState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMBER_STATE_ALIVE: _ClassVar[MemberState]
    MEMBER_STATE_SUSPECT: _ClassVar[MemberState]
    MEMBER_STATE_DEAD: _ClassVar[MemberState]
    MEMBER_STATE_LEFT: _ClassVar[MemberState]
    MEMBER_STATE_REMOVED: _ClassVar[MemberState]
MEMBER_STATE_ALIVE: MemberState
MEMBER_STATE_SUSPECT: MemberState
MEMBER_STATE_DEAD: MemberState
MEMBER_STATE_LEFT: MemberState
MEMBER_STATE_REMOVED: MemberState

class Record(_message.Message):
    __slots__ = ("namespace", "key", "header", "value")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    namespace: bytes
    key: bytes
    header: bytes
    value: bytes
    def __init__(self, namespace: _Optional[bytes] = ..., key: _Optional[bytes] = ..., header: _Optional[bytes] = ..., value: _Optional[bytes] = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("id", "address", "incarnation", "state", "boot_nonce", "name")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BOOT_NONCE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: int
    address: str
    incarnation: int
    state: MemberState
    boot_nonce: int
    name: str
    def __init__(self, id: _Optional[int] = ..., address: _Optional[str] = ..., incarnation: _Optional[int] = ..., state: _Optional[_Union[MemberState, str]] = ..., boot_nonce: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...

class Coverage(_message.Message):
    __slots__ = ("origin", "base", "last", "complete")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    origin: int
    base: int
    last: int
    complete: bool
    def __init__(self, origin: _Optional[int] = ..., base: _Optional[int] = ..., last: _Optional[int] = ..., complete: _Optional[bool] = ...) -> None: ...

class Envelope(_message.Message):
    __slots__ = ("sender", "boot_nonce", "hlc", "members", "watermarks", "address", "name", "high_seqs", "issued_seq", "refuses_writes", "recipient", "away")
    class WatermarksEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    class HighSeqsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    SENDER_FIELD_NUMBER: _ClassVar[int]
    BOOT_NONCE_FIELD_NUMBER: _ClassVar[int]
    HLC_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    WATERMARKS_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    HIGH_SEQS_FIELD_NUMBER: _ClassVar[int]
    ISSUED_SEQ_FIELD_NUMBER: _ClassVar[int]
    REFUSES_WRITES_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    AWAY_FIELD_NUMBER: _ClassVar[int]
    sender: int
    boot_nonce: int
    hlc: int
    members: _containers.RepeatedCompositeFieldContainer[Member]
    watermarks: _containers.ScalarMap[int, int]
    address: str
    name: str
    high_seqs: _containers.ScalarMap[int, int]
    issued_seq: int
    refuses_writes: str
    recipient: int
    away: bool
    def __init__(self, sender: _Optional[int] = ..., boot_nonce: _Optional[int] = ..., hlc: _Optional[int] = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., watermarks: _Optional[_Mapping[int, int]] = ..., address: _Optional[str] = ..., name: _Optional[str] = ..., high_seqs: _Optional[_Mapping[int, int]] = ..., issued_seq: _Optional[int] = ..., refuses_writes: _Optional[str] = ..., recipient: _Optional[int] = ..., away: _Optional[bool] = ...) -> None: ...

class ProtocolOffer(_message.Message):
    __slots__ = ("version", "oldest", "features", "release")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OLDEST_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    version: int
    oldest: int
    features: _containers.RepeatedScalarFieldContainer[str]
    release: str
    def __init__(self, version: _Optional[int] = ..., oldest: _Optional[int] = ..., features: _Optional[_Iterable[str]] = ..., release: _Optional[str] = ...) -> None: ...

class RecordId(_message.Message):
    __slots__ = ("origin", "seq", "record_key")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    RECORD_KEY_FIELD_NUMBER: _ClassVar[int]
    origin: int
    seq: int
    record_key: bytes
    def __init__(self, origin: _Optional[int] = ..., seq: _Optional[int] = ..., record_key: _Optional[bytes] = ...) -> None: ...

class PushRequest(_message.Message):
    __slots__ = ("envelope", "records", "coverage", "announced")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCED_FIELD_NUMBER: _ClassVar[int]
    envelope: Envelope
    records: _containers.RepeatedCompositeFieldContainer[Record]
    coverage: _containers.RepeatedCompositeFieldContainer[Coverage]
    announced: _containers.RepeatedCompositeFieldContainer[RecordId]
    def __init__(self, envelope: _Optional[_Union[Envelope, _Mapping]] = ..., records: _Optional[_Iterable[_Union[Record, _Mapping]]] = ..., coverage: _Optional[_Iterable[_Union[Coverage, _Mapping]]] = ..., announced: _Optional[_Iterable[_Union[RecordId, _Mapping]]] = ...) -> None: ...

class PushResponse(_message.Message):
    __slots__ = ("envelope", "not_ready")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    NOT_READY_FIELD_NUMBER: _ClassVar[int]
    envelope: Envelope
    not_ready: bool
    def __init__(self, envelope: _Optional[_Union[Envelope, _Mapping]] = ..., not_ready: _Optional[bool] = ...) -> None: ...

class ExchangeRequest(_message.Message):
    __slots__ = ("envelope", "digest", "protocol")
    class DigestEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    envelope: Envelope
    digest: _containers.ScalarMap[int, int]
    protocol: ProtocolOffer
    def __init__(self, envelope: _Optional[_Union[Envelope, _Mapping]] = ..., digest: _Optional[_Mapping[int, int]] = ..., protocol: _Optional[_Union[ProtocolOffer, _Mapping]] = ...) -> None: ...

class ExchangeResponse(_message.Message):
    __slots__ = ("envelope", "records", "coverage", "protocol")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    envelope: Envelope
    records: _containers.RepeatedCompositeFieldContainer[Record]
    coverage: _containers.RepeatedCompositeFieldContainer[Coverage]
    protocol: ProtocolOffer
    def __init__(self, envelope: _Optional[_Union[Envelope, _Mapping]] = ..., records: _Optional[_Iterable[_Union[Record, _Mapping]]] = ..., coverage: _Optional[_Iterable[_Union[Coverage, _Mapping]]] = ..., protocol: _Optional[_Union[ProtocolOffer, _Mapping]] = ...) -> None: ...

class AuditRequest(_message.Message):
    __slots__ = ("envelope", "buckets", "list_buckets", "fetch", "scan_from")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    LIST_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    FETCH_FIELD_NUMBER: _ClassVar[int]
    SCAN_FROM_FIELD_NUMBER: _ClassVar[int]
    envelope: Envelope
    buckets: bytes
    list_buckets: _containers.RepeatedScalarFieldContainer[int]
    fetch: _containers.RepeatedScalarFieldContainer[bytes]
    scan_from: bytes
    def __init__(self, envelope: _Optional[_Union[Envelope, _Mapping]] = ..., buckets: _Optional[bytes] = ..., list_buckets: _Optional[_Iterable[int]] = ..., fetch: _Optional[_Iterable[bytes]] = ..., scan_from: _Optional[bytes] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("record_key", "hlc", "origin", "tombstone", "seq", "expiration")
    RECORD_KEY_FIELD_NUMBER: _ClassVar[int]
    HLC_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    TOMBSTONE_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_FIELD_NUMBER: _ClassVar[int]
    record_key: bytes
    hlc: int
    origin: int
    tombstone: bool
    seq: int
    expiration: int
    def __init__(self, record_key: _Optional[bytes] = ..., hlc: _Optional[int] = ..., origin: _Optional[int] = ..., tombstone: _Optional[bool] = ..., seq: _Optional[int] = ..., expiration: _Optional[int] = ...) -> None: ...

class AuditResponse(_message.Message):
    __slots__ = ("envelope", "differing", "entries", "records", "scan_next")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    DIFFERING_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    SCAN_NEXT_FIELD_NUMBER: _ClassVar[int]
    envelope: Envelope
    differing: _containers.RepeatedScalarFieldContainer[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    records: _containers.RepeatedCompositeFieldContainer[Record]
    scan_next: bytes
    def __init__(self, envelope: _Optional[_Union[Envelope, _Mapping]] = ..., differing: _Optional[_Iterable[int]] = ..., entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ..., records: _Optional[_Iterable[_Union[Record, _Mapping]]] = ..., scan_next: _Optional[bytes] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ("envelope", "sent_ms", "probe_target", "target_address")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    SENT_MS_FIELD_NUMBER: _ClassVar[int]
    PROBE_TARGET_FIELD_NUMBER: _ClassVar[int]
    TARGET_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    envelope: Envelope
    sent_ms: int
    probe_target: int
    target_address: str
    def __init__(self, envelope: _Optional[_Union[Envelope, _Mapping]] = ..., sent_ms: _Optional[int] = ..., probe_target: _Optional[int] = ..., target_address: _Optional[str] = ...) -> None: ...

class PingResponse(_message.Message):
    __slots__ = ("envelope", "received_ms", "replied_ms", "target_alive", "replied_wall_ms")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_MS_FIELD_NUMBER: _ClassVar[int]
    REPLIED_MS_FIELD_NUMBER: _ClassVar[int]
    TARGET_ALIVE_FIELD_NUMBER: _ClassVar[int]
    REPLIED_WALL_MS_FIELD_NUMBER: _ClassVar[int]
    envelope: Envelope
    received_ms: int
    replied_ms: int
    target_alive: bool
    replied_wall_ms: int
    def __init__(self, envelope: _Optional[_Union[Envelope, _Mapping]] = ..., received_ms: _Optional[int] = ..., replied_ms: _Optional[int] = ..., target_alive: _Optional[bool] = ..., replied_wall_ms: _Optional[int] = ...) -> None: ...

class JoinRequest(_message.Message):
    __slots__ = ("envelope", "protocol")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    envelope: Envelope
    protocol: ProtocolOffer
    def __init__(self, envelope: _Optional[_Union[Envelope, _Mapping]] = ..., protocol: _Optional[_Union[ProtocolOffer, _Mapping]] = ...) -> None: ...

class JoinResponse(_message.Message):
    __slots__ = ("envelope", "members", "protocol")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    envelope: Envelope
    members: _containers.RepeatedCompositeFieldContainer[Member]
    protocol: ProtocolOffer
    def __init__(self, envelope: _Optional[_Union[Envelope, _Mapping]] = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., protocol: _Optional[_Union[ProtocolOffer, _Mapping]] = ...) -> None: ...

class AdmitRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: Envelope
    def __init__(self, envelope: _Optional[_Union[Envelope, _Mapping]] = ...) -> None: ...

class AdmitResponse(_message.Message):
    __slots__ = ("envelope", "admitted", "reason")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    ADMITTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    envelope: Envelope
    admitted: bool
    reason: str
    def __init__(self, envelope: _Optional[_Union[Envelope, _Mapping]] = ..., admitted: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class SnapshotRequest(_message.Message):
    __slots__ = ("sender", "snapshot_id", "file_index", "offset")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_INDEX_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    sender: int
    snapshot_id: str
    file_index: int
    offset: int
    def __init__(self, sender: _Optional[int] = ..., snapshot_id: _Optional[str] = ..., file_index: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class SnapshotFile(_message.Message):
    __slots__ = ("name", "size", "crc32")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CRC32_FIELD_NUMBER: _ClassVar[int]
    name: str
    size: int
    crc32: int
    def __init__(self, name: _Optional[str] = ..., size: _Optional[int] = ..., crc32: _Optional[int] = ...) -> None: ...

class SnapshotChunk(_message.Message):
    __slots__ = ("snapshot_id", "files", "file_index", "offset", "data", "crc32")
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    FILE_INDEX_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CRC32_FIELD_NUMBER: _ClassVar[int]
    snapshot_id: str
    files: _containers.RepeatedCompositeFieldContainer[SnapshotFile]
    file_index: int
    offset: int
    data: bytes
    crc32: int
    def __init__(self, snapshot_id: _Optional[str] = ..., files: _Optional[_Iterable[_Union[SnapshotFile, _Mapping]]] = ..., file_index: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., crc32: _Optional[int] = ...) -> None: ...
