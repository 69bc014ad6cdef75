"""Translation between the SDK's Python values and the rumor.v1 messages (no I/O).

Shared by the sync and asyncio clients so both behave identically.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rumor.client.errors import InvalidRequestError
from rumor.client.models import Change, KeyInfo, ListResult, WriteResult
from rumor.v1 import kv_pb2

ValueType = Literal["text", "json", "bytes", "arrayBuffer", "stream"]
STREAM_CHUNK_BYTES = 1024 * 1024
ACCEPTED_VALUES = "str, bytes, bytearray, memoryview, a binary file object or an iterable of bytes"
_WIRE_TYPES: dict[str, kv_pb2.ValueType] = {
    "text": kv_pb2.VALUE_TYPE_TEXT,
    "json": kv_pb2.VALUE_TYPE_JSON,
    "bytes": kv_pb2.VALUE_TYPE_BYTES,
    "arrayBuffer": kv_pb2.VALUE_TYPE_BYTES,
    "stream": kv_pb2.VALUE_TYPE_BYTES,
}


def key_bytes(key: str) -> bytes:
    if not isinstance(key, str):
        raise TypeError(f"a key must be a str, not {type(key).__name__}")
    return key.encode("utf-8", "surrogateescape")


def key_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def wire_type(value_type: str) -> kv_pb2.ValueType:
    try:
        return _WIRE_TYPES[value_type]
    except (KeyError, TypeError):
        # workerd's TypeError, word for word, then the Python SDK's own "bytes".
        raise TypeError(
            'Unknown response type. Possible types are "text", "arrayBuffer", "json",'
            ' and "stream" (and "bytes" in Python).'
        ) from None


INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def js_int(value: object) -> int:
    """A number as the Workers runtime converts one to its 32-bit ``int`` options
    (``expiration``, ``expirationTtl``, a list's ``limit``): NaN and infinities are 0,
    a fraction is cut toward zero, and a value beyond 32 bits is a TypeError."""
    if isinstance(value, bool | int):
        number = int(value)
    elif isinstance(value, float):
        number = 0 if math.isnan(value) or math.isinf(value) else math.trunc(value)
    else:
        raise TypeError(f"a number is needed, not {type(value).__name__}")
    if not INT32_MIN <= number <= INT32_MAX:
        raise TypeError(
            f"Value out of range. Must be between {INT32_MIN} and {INT32_MAX} (inclusive)."
        )
    return number


def metadata_bytes(metadata: Any) -> bytes | None:
    if metadata is None:
        return None
    try:
        return json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata must be JSON-serialisable: {exc}") from None


def metadata_value(raw: bytes) -> Any:
    return json.loads(raw)


def small_value(value: object) -> bytes | None:
    """The bytes of a value sent in one message, or None if it must be streamed."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return None


def is_binary_file(value: object) -> bool:
    if isinstance(value, io.TextIOBase):
        return False
    return callable(getattr(value, "read", None))


def unsupported_value(value: object) -> TypeError:
    # workerd's TypeError, then what those are in Python.
    return TypeError(
        "KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams"
        f" as values: in Python {ACCEPTED_VALUES}; got {type(value).__name__}"
    )


def put_request(
    namespace_id: str,
    key: str,
    value: bytes,
    *,
    expiration: float | None = None,
    expiration_ttl: float | None = None,
    metadata: Any = None,
    min_replicas: int | None = None,
) -> kv_pb2.PutRequest:
    request = kv_pb2.PutRequest(namespace_id=namespace_id, key=key_bytes(key), value=value)
    if min_replicas is not None:
        request.min_replicas = int(min_replicas)
    if expiration is not None:
        request.expiration = js_int(expiration)
    if expiration_ttl is not None:
        request.expiration_ttl = js_int(expiration_ttl)
    encoded = metadata_bytes(metadata)
    if encoded is not None:
        request.metadata = encoded
    return request


def bulk_put_request(
    namespace_id: str, items: Iterable[Mapping[str, Any]]
) -> kv_pb2.BulkPutRequest:
    """A BulkPutRequest of wrangler-style items (see ``bulk_item``), each built in place:
    an item of only a key and a value is the common case, and copying a built message
    into the request cost as much as building it."""
    request = kv_pb2.BulkPutRequest(namespace_id=namespace_id)
    add = request.items.add
    append = request.items.append
    for item in items:
        # Exactly {"key": str, "value": bytes | str}: what ``bulk_item`` makes of it, made here.
        if type(item) is dict and len(item) == 2 and type(item.get("key")) is str:
            value = item.get("value")
            if type(value) is bytes:
                add(key=key_bytes(item["key"]), value=value)
                continue
            if type(value) is str:
                add(key=key_bytes(item["key"]), value=value.encode())
                continue
        append(bulk_item(item))
    return request


def bulk_item(item: Mapping[str, Any]) -> kv_pb2.PutRequest:
    """A wrangler-style item: {key, value, base64?, expiration?, expiration_ttl?, metadata?}."""
    if not isinstance(item, Mapping) or "key" not in item or "value" not in item:
        raise InvalidRequestError(
            'Each bulk item must be an object like {"key": "...", "value": "..."}.'
        )
    value = item["value"]
    data: bytes | None
    if item.get("base64"):
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise InvalidRequestError(
                f'The value of key "{item["key"]}" is not valid base64.'
            ) from None
    else:
        data = small_value(value) if not isinstance(value, str) else value.encode()
        if data is None:
            raise TypeError(f"bulk values must be str or bytes, not {type(value).__name__}")
    return put_request(
        "",
        item["key"],
        data,
        expiration=item.get("expiration"),
        expiration_ttl=item.get("expiration_ttl"),
        metadata=item.get("metadata"),
    )


def decode_value(response: kv_pb2.GetResponse, value_type: str) -> Any:
    """The value of a GetResponse as ``value_type`` asks; None when not found."""
    if not response.found:
        return None
    if value_type == "text":
        return response.text
    if value_type == "json":
        return json.loads(response.json)
    return response.value


def decode_metadata(response: kv_pb2.GetResponse) -> Any:
    if not response.found or not response.HasField("metadata"):
        return None
    return metadata_value(response.metadata)


def write_result(version: kv_pb2.Version, seq: int, expiration: int = 0) -> WriteResult:
    return WriteResult(version.hlc, version.origin, seq, expiration or None)


def list_result(response: kv_pb2.ListResponse) -> ListResult:
    keys = [
        KeyInfo(
            name=key_text(info.name),
            expiration=info.expiration if info.HasField("expiration") else None,
            metadata=metadata_value(info.metadata) if info.HasField("metadata") else None,
        )
        for info in response.keys
    ]
    cursor = None if response.list_complete else response.cursor.decode()
    return ListResult(keys, response.list_complete, cursor)


def list_request(
    namespace_id: str, prefix: str | None, limit: float | None, cursor: str | None
) -> kv_pb2.ListRequest:
    request = kv_pb2.ListRequest(namespace_id=namespace_id)
    if prefix:
        request.prefix = key_bytes(prefix)
    if limit is not None and (count := js_int(limit)) > 0:
        request.limit = count  # 0 or less: the default, as workerd drops it
    if cursor:
        request.cursor = cursor.encode()
    return request


def get_request(
    namespace_id: str,
    key: str,
    value_type: str,
    with_metadata: bool,
    cache_ttl: int | None = None,
) -> kv_pb2.GetRequest:
    request = kv_pb2.GetRequest(
        namespace_id=namespace_id,
        key=key_bytes(key),
        type=wire_type(value_type),
        with_metadata=with_metadata,
    )
    if cache_ttl is not None:
        request.cache_ttl = _cache_ttl(cache_ttl)
    return request


def _cache_ttl(cache_ttl: object) -> int:
    """An int for the message; the node checks its range and words the error
    (clamped so that protobuf's int64 never refuses it first)."""
    if isinstance(cache_ttl, bool) or not isinstance(cache_ttl, int):
        raise TypeError(f"cache_ttl must be an int, not {type(cache_ttl).__name__}")
    return max(min(cache_ttl, 2**63 - 1), -(2**63))


def bulk_get_request(
    namespace_id: str,
    keys: Iterable[str],
    value_type: str,
    with_metadata: bool,
    cache_ttl: int | None = None,
) -> kv_pb2.BulkGetRequest:
    if value_type not in ("text", "json"):
        # What the binding answers (Miniflare's words), as workerd shows it.
        raise InvalidRequestError(
            f'"{value_type}" is not a valid type. Use "json" or "text"',
            operation="GET_BULK",
            status=400,
        )
    request = kv_pb2.BulkGetRequest(
        namespace_id=namespace_id,
        keys=[key_bytes(key) for key in keys],
        type=_WIRE_TYPES[value_type],
        with_metadata=with_metadata,
    )
    if cache_ttl is not None:
        request.cache_ttl = _cache_ttl(cache_ttl)
    return request


@dataclass(frozen=True, slots=True)
class StreamSource:
    """Where a streamed value comes from: ``chunks()`` starts it (again, if ``retryable``)."""

    chunks: Callable[[], Any]  # a fresh iterable or async iterable of bytes
    retryable: bool


def stream_source(value: object, *, allow_async: bool) -> StreamSource:
    """How to stream ``value``, or TypeError naming what ``put`` accepts."""
    if isinstance(value, io.TextIOBase):
        raise unsupported_value(value)
    if is_binary_file(value):
        seekable = getattr(value, "seekable", None)
        if callable(seekable) and seekable():
            position = value.tell()  # type: ignore[attr-defined]

            def rewound() -> Iterable[bytes]:
                value.seek(position)  # type: ignore[attr-defined]
                return stream_chunks_from_file(value)

            return StreamSource(rewound, retryable=True)
        return StreamSource(lambda: stream_chunks_from_file(value), retryable=False)
    if allow_async and isinstance(value, AsyncIterable):
        return StreamSource(lambda: value, retryable=False)
    if isinstance(value, Iterable) and not isinstance(value, str | dict):
        return StreamSource(lambda: value, retryable=False)
    raise unsupported_value(value)


def checked_chunk(chunk: object) -> bytes:
    if not isinstance(chunk, bytes | bytearray | memoryview):
        raise TypeError(f"an iterable value must yield bytes, not {type(chunk).__name__}")
    return bytes(chunk)


def stream_chunks_from_file(handle: Any) -> Iterable[bytes]:
    while True:
        chunk = handle.read(STREAM_CHUNK_BYTES)
        if not chunk:
            return
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError("files must be opened in binary mode ('rb') to be put")
        yield bytes(chunk)


def watch_request(namespace_id: str, prefix: str | None, buffer: int) -> kv_pb2.WatchRequest:
    return kv_pb2.WatchRequest(
        namespace_id=namespace_id, prefix=key_bytes(prefix or ""), buffer=buffer
    )


def change(event: kv_pb2.WatchEvent) -> Change:
    if event.fell_behind:
        return Change(key="", fell_behind=True, dropped=event.dropped)
    return Change(
        key=key_text(event.key),
        hlc=event.version.hlc,
        origin=event.version.origin,
        seq=event.seq,
        deleted=event.tombstone,
        expiration=event.expiration or None,
        applied_wall_ms=event.applied_wall_ms,
        applied_monotonic_ns=event.applied_monotonic_ns,
        local=event.local,
    )
