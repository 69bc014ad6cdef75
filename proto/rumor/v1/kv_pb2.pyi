from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ValueType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VALUE_TYPE_BYTES: _ClassVar[ValueType]
    VALUE_TYPE_TEXT: _ClassVar[ValueType]
    VALUE_TYPE_JSON: _ClassVar[ValueType]
VALUE_TYPE_BYTES: ValueType
VALUE_TYPE_TEXT: ValueType
VALUE_TYPE_JSON: ValueType

class Version(_message.Message):
    __slots__ = ("hlc", "origin")
    HLC_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    hlc: int
    origin: int
    def __init__(self, hlc: _Optional[int] = ..., origin: _Optional[int] = ...) -> None: ...

class Namespace(_message.Message):
    __slots__ = ("id", "title")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    id: str
    title: str
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ...) -> None: ...

class CreateNamespaceRequest(_message.Message):
    __slots__ = ("title",)
    TITLE_FIELD_NUMBER: _ClassVar[int]
    title: str
    def __init__(self, title: _Optional[str] = ...) -> None: ...

class ListNamespacesRequest(_message.Message):
    __slots__ = ("limit", "cursor")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    limit: int
    cursor: str
    def __init__(self, limit: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class ListNamespacesResponse(_message.Message):
    __slots__ = ("namespaces", "cursor", "list_complete")
    NAMESPACES_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    LIST_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    namespaces: _containers.RepeatedCompositeFieldContainer[Namespace]
    cursor: str
    list_complete: bool
    def __init__(self, namespaces: _Optional[_Iterable[_Union[Namespace, _Mapping]]] = ..., cursor: _Optional[str] = ..., list_complete: _Optional[bool] = ...) -> None: ...

class GetNamespaceRequest(_message.Message):
    __slots__ = ("namespace_id",)
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    namespace_id: str
    def __init__(self, namespace_id: _Optional[str] = ...) -> None: ...

class RenameNamespaceRequest(_message.Message):
    __slots__ = ("namespace_id", "title")
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    namespace_id: str
    title: str
    def __init__(self, namespace_id: _Optional[str] = ..., title: _Optional[str] = ...) -> None: ...

class DeleteNamespaceRequest(_message.Message):
    __slots__ = ("namespace_id",)
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    namespace_id: str
    def __init__(self, namespace_id: _Optional[str] = ...) -> None: ...

class DeleteNamespaceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PutRequest(_message.Message):
    __slots__ = ("namespace_id", "key", "value", "expiration", "expiration_ttl", "metadata", "min_replicas", "after")
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_TTL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    MIN_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    namespace_id: str
    key: bytes
    value: bytes
    expiration: int
    expiration_ttl: int
    metadata: bytes
    min_replicas: int
    after: str
    def __init__(self, namespace_id: _Optional[str] = ..., key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., expiration: _Optional[int] = ..., expiration_ttl: _Optional[int] = ..., metadata: _Optional[bytes] = ..., min_replicas: _Optional[int] = ..., after: _Optional[str] = ...) -> None: ...

class PutResponse(_message.Message):
    __slots__ = ("version", "seq", "expiration", "session")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    version: Version
    seq: int
    expiration: int
    session: str
    def __init__(self, version: _Optional[_Union[Version, _Mapping]] = ..., seq: _Optional[int] = ..., expiration: _Optional[int] = ..., session: _Optional[str] = ...) -> None: ...

class PutStreamRequest(_message.Message):
    __slots__ = ("header", "chunk", "last")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    header: PutRequest
    chunk: bytes
    last: bool
    def __init__(self, header: _Optional[_Union[PutRequest, _Mapping]] = ..., chunk: _Optional[bytes] = ..., last: _Optional[bool] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("namespace_id", "key", "type", "with_metadata", "cache_ttl", "after", "max_staleness_ms")
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    WITH_METADATA_FIELD_NUMBER: _ClassVar[int]
    CACHE_TTL_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    MAX_STALENESS_MS_FIELD_NUMBER: _ClassVar[int]
    namespace_id: str
    key: bytes
    type: ValueType
    with_metadata: bool
    cache_ttl: int
    after: str
    max_staleness_ms: int
    def __init__(self, namespace_id: _Optional[str] = ..., key: _Optional[bytes] = ..., type: _Optional[_Union[ValueType, str]] = ..., with_metadata: _Optional[bool] = ..., cache_ttl: _Optional[int] = ..., after: _Optional[str] = ..., max_staleness_ms: _Optional[int] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("found", "value", "text", "json", "metadata", "expiration", "version", "session")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    found: bool
    value: bytes
    text: str
    json: str
    metadata: bytes
    expiration: int
    version: Version
    session: str
    def __init__(self, found: _Optional[bool] = ..., value: _Optional[bytes] = ..., text: _Optional[str] = ..., json: _Optional[str] = ..., metadata: _Optional[bytes] = ..., expiration: _Optional[int] = ..., version: _Optional[_Union[Version, _Mapping]] = ..., session: _Optional[str] = ...) -> None: ...

class GetStreamResponse(_message.Message):
    __slots__ = ("header", "value_length", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    VALUE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: GetResponse
    value_length: int
    chunk: bytes
    def __init__(self, header: _Optional[_Union[GetResponse, _Mapping]] = ..., value_length: _Optional[int] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class BulkGetRequest(_message.Message):
    __slots__ = ("namespace_id", "keys", "type", "with_metadata", "cache_ttl", "after", "max_staleness_ms")
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    WITH_METADATA_FIELD_NUMBER: _ClassVar[int]
    CACHE_TTL_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    MAX_STALENESS_MS_FIELD_NUMBER: _ClassVar[int]
    namespace_id: str
    keys: _containers.RepeatedScalarFieldContainer[bytes]
    type: ValueType
    with_metadata: bool
    cache_ttl: int
    after: str
    max_staleness_ms: int
    def __init__(self, namespace_id: _Optional[str] = ..., keys: _Optional[_Iterable[bytes]] = ..., type: _Optional[_Union[ValueType, str]] = ..., with_metadata: _Optional[bool] = ..., cache_ttl: _Optional[int] = ..., after: _Optional[str] = ..., max_staleness_ms: _Optional[int] = ...) -> None: ...

class BulkGetEntry(_message.Message):
    __slots__ = ("key", "result")
    KEY_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    result: GetResponse
    def __init__(self, key: _Optional[bytes] = ..., result: _Optional[_Union[GetResponse, _Mapping]] = ...) -> None: ...

class BulkGetResponse(_message.Message):
    __slots__ = ("entries", "session")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[BulkGetEntry]
    session: str
    def __init__(self, entries: _Optional[_Iterable[_Union[BulkGetEntry, _Mapping]]] = ..., session: _Optional[str] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("namespace_id", "key", "after")
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    namespace_id: str
    key: bytes
    after: str
    def __init__(self, namespace_id: _Optional[str] = ..., key: _Optional[bytes] = ..., after: _Optional[str] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("version", "seq", "session")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    version: Version
    seq: int
    session: str
    def __init__(self, version: _Optional[_Union[Version, _Mapping]] = ..., seq: _Optional[int] = ..., session: _Optional[str] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("namespace_id", "prefix", "limit", "cursor", "after", "max_staleness_ms")
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    MAX_STALENESS_MS_FIELD_NUMBER: _ClassVar[int]
    namespace_id: str
    prefix: bytes
    limit: int
    cursor: bytes
    after: str
    max_staleness_ms: int
    def __init__(self, namespace_id: _Optional[str] = ..., prefix: _Optional[bytes] = ..., limit: _Optional[int] = ..., cursor: _Optional[bytes] = ..., after: _Optional[str] = ..., max_staleness_ms: _Optional[int] = ...) -> None: ...

class KeyInfo(_message.Message):
    __slots__ = ("name", "expiration", "metadata")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    expiration: int
    metadata: bytes
    def __init__(self, name: _Optional[bytes] = ..., expiration: _Optional[int] = ..., metadata: _Optional[bytes] = ...) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("keys", "list_complete", "cursor", "session")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    LIST_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[KeyInfo]
    list_complete: bool
    cursor: bytes
    session: str
    def __init__(self, keys: _Optional[_Iterable[_Union[KeyInfo, _Mapping]]] = ..., list_complete: _Optional[bool] = ..., cursor: _Optional[bytes] = ..., session: _Optional[str] = ...) -> None: ...

class BulkPutRequest(_message.Message):
    __slots__ = ("namespace_id", "items", "after")
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    namespace_id: str
    items: _containers.RepeatedCompositeFieldContainer[PutRequest]
    after: str
    def __init__(self, namespace_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[PutRequest, _Mapping]]] = ..., after: _Optional[str] = ...) -> None: ...

class BulkPutResponse(_message.Message):
    __slots__ = ("successful_key_count", "unsuccessful_keys", "session")
    SUCCESSFUL_KEY_COUNT_FIELD_NUMBER: _ClassVar[int]
    UNSUCCESSFUL_KEYS_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    successful_key_count: int
    unsuccessful_keys: _containers.RepeatedScalarFieldContainer[bytes]
    session: str
    def __init__(self, successful_key_count: _Optional[int] = ..., unsuccessful_keys: _Optional[_Iterable[bytes]] = ..., session: _Optional[str] = ...) -> None: ...

class BulkDeleteRequest(_message.Message):
    __slots__ = ("namespace_id", "keys", "after")
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    namespace_id: str
    keys: _containers.RepeatedScalarFieldContainer[bytes]
    after: str
    def __init__(self, namespace_id: _Optional[str] = ..., keys: _Optional[_Iterable[bytes]] = ..., after: _Optional[str] = ...) -> None: ...

class BulkDeleteResponse(_message.Message):
    __slots__ = ("successful_key_count", "session")
    SUCCESSFUL_KEY_COUNT_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    successful_key_count: int
    session: str
    def __init__(self, successful_key_count: _Optional[int] = ..., session: _Optional[str] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("namespace_id", "prefix", "buffer", "all_namespaces")
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    BUFFER_FIELD_NUMBER: _ClassVar[int]
    ALL_NAMESPACES_FIELD_NUMBER: _ClassVar[int]
    namespace_id: str
    prefix: bytes
    buffer: int
    all_namespaces: bool
    def __init__(self, namespace_id: _Optional[str] = ..., prefix: _Optional[bytes] = ..., buffer: _Optional[int] = ..., all_namespaces: _Optional[bool] = ...) -> None: ...

class WatchEvent(_message.Message):
    __slots__ = ("key", "version", "seq", "tombstone", "expiration", "applied_wall_ms", "applied_monotonic_ns", "local", "fell_behind", "dropped", "namespace_id")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TOMBSTONE_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_WALL_MS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_MONOTONIC_NS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    FELL_BEHIND_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    version: Version
    seq: int
    tombstone: bool
    expiration: int
    applied_wall_ms: int
    applied_monotonic_ns: int
    local: bool
    fell_behind: bool
    dropped: int
    namespace_id: str
    def __init__(self, key: _Optional[bytes] = ..., version: _Optional[_Union[Version, _Mapping]] = ..., seq: _Optional[int] = ..., tombstone: _Optional[bool] = ..., expiration: _Optional[int] = ..., applied_wall_ms: _Optional[int] = ..., applied_monotonic_ns: _Optional[int] = ..., local: _Optional[bool] = ..., fell_behind: _Optional[bool] = ..., dropped: _Optional[int] = ..., namespace_id: _Optional[str] = ...) -> None: ...

class ListenersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListenersResponse(_message.Message):
    __slots__ = ("grpc", "http")
    GRPC_FIELD_NUMBER: _ClassVar[int]
    HTTP_FIELD_NUMBER: _ClassVar[int]
    grpc: str
    http: str
    def __init__(self, grpc: _Optional[str] = ..., http: _Optional[str] = ...) -> None: ...

class BatchOp(_message.Message):
    __slots__ = ("id", "get", "bulk_get", "put", "delete", "list", "timeout_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    GET_FIELD_NUMBER: _ClassVar[int]
    BULK_GET_FIELD_NUMBER: _ClassVar[int]
    PUT_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    LIST_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    id: int
    get: GetRequest
    bulk_get: BulkGetRequest
    put: PutRequest
    delete: DeleteRequest
    list: ListRequest
    timeout_ms: int
    def __init__(self, id: _Optional[int] = ..., get: _Optional[_Union[GetRequest, _Mapping]] = ..., bulk_get: _Optional[_Union[BulkGetRequest, _Mapping]] = ..., put: _Optional[_Union[PutRequest, _Mapping]] = ..., delete: _Optional[_Union[DeleteRequest, _Mapping]] = ..., list: _Optional[_Union[ListRequest, _Mapping]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class BatchRequest(_message.Message):
    __slots__ = ("ops", "cancel")
    OPS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    ops: _containers.RepeatedCompositeFieldContainer[BatchOp]
    cancel: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, ops: _Optional[_Iterable[_Union[BatchOp, _Mapping]]] = ..., cancel: _Optional[_Iterable[int]] = ...) -> None: ...

class BatchError(_message.Message):
    __slots__ = ("code", "message", "http_status")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    http_status: int
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., http_status: _Optional[int] = ...) -> None: ...

class BatchResult(_message.Message):
    __slots__ = ("id", "get", "bulk_get", "put", "delete", "list", "error", "lag_bound_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    GET_FIELD_NUMBER: _ClassVar[int]
    BULK_GET_FIELD_NUMBER: _ClassVar[int]
    PUT_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    LIST_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LAG_BOUND_MS_FIELD_NUMBER: _ClassVar[int]
    id: int
    get: GetResponse
    bulk_get: BulkGetResponse
    put: PutResponse
    delete: DeleteResponse
    list: ListResponse
    error: BatchError
    lag_bound_ms: str
    def __init__(self, id: _Optional[int] = ..., get: _Optional[_Union[GetResponse, _Mapping]] = ..., bulk_get: _Optional[_Union[BulkGetResponse, _Mapping]] = ..., put: _Optional[_Union[PutResponse, _Mapping]] = ..., delete: _Optional[_Union[DeleteResponse, _Mapping]] = ..., list: _Optional[_Union[ListResponse, _Mapping]] = ..., error: _Optional[_Union[BatchError, _Mapping]] = ..., lag_bound_ms: _Optional[str] = ...) -> None: ...

class BatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchResult, _Mapping]]] = ...) -> None: ...
