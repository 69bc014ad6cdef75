"""The keys, values and bulk routes of the Cloudflare-compatible HTTP gateway.

Values are sent in chunks, holding their bytes against the node's in-flight
read budget until the last chunk is written, so slow readers cannot pile
values up in memory; a value of at most ``INLINE_VALUE_BYTES`` goes in one
write with the headers (the transport takes it without waiting). While the
budget has room for the largest value, a read is admitted without first
reading the key's header for an estimate (``read_found``).

Bodies are read under the upload budget and its clocks (``body``). A
multipart body is counted against the body limit as it streams (aiohttp's
``client_max_size`` does not see multipart parts): a part beyond it is refused
when the limit is crossed, and a value part is buffered only up to the value
limit.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aiohttp import BodyPartReader, web

from rumor.node.core import paging, validation
from rumor.node.core.errors import InvalidRequest, RumorError, ValueTooLarge
from rumor.node.core.record import RecordHeader
from rumor.node.server.admission import ByteBudget, Reservation
from rumor.node.server.http.body import (
    count_part_chunk,
    json_body,
    multipart_upload,
    read_body,
)
from rumor.node.server.http.bulk_get import bulk_get_values
from rumor.node.server.http.request import (
    CODE_KEY_NOT_FOUND,
    EMPTY_SUCCESS,
    READS,
    SEND_CHUNK_BYTES,
    dumps,
    envelope,
    failure,
    int_param,
    json_answer,
    namespace_id_of,
    operations_of,
    raw_key_of,
)
from rumor.node.server.http.session_header import (
    list_session,
    read_session,
    read_session_of,
    session_of,
    write_session,
)
from rumor.node.server.operations import Found, Operations, PutItem
from rumor.node.server.upload_budget import Upload

OCTET_STREAM = "application/octet-stream"
# A value up to this size is sent in one write with its headers: below the transport's
# high-water mark (64 KiB), so the write never waited for the reader anyway.
INLINE_VALUE_BYTES = 16 * 1024


async def send_value(
    request: web.Request, value: bytes, headers: dict[str, str]
) -> web.StreamResponse:
    """Write ``value`` in chunks, each awaiting the socket (a slow reader holds no copies)."""
    response = web.StreamResponse(headers=headers)
    response.content_length = len(value)
    await response.prepare(request)
    view = memoryview(value)
    for start in range(0, len(view), SEND_CHUNK_BYTES):
        await response.write(view[start : start + SEND_CHUNK_BYTES])
    await response.write_eof()
    return response


async def read_found(
    operations: Operations,
    reads: ByteBudget,
    namespace_id: str,
    key: bytes,
    cache_ttl: str | None,
) -> tuple[Found | None, Reservation]:
    """Wait for room in the read budget, read ``key``; (found or None, the reservation)."""
    if reads.admits(validation.MAX_VALUE_BYTES):
        # Any one value would be admitted: read it, then hold what was read.
        found = await operations.read(namespace_id, key, cache_ttl)
        return found, reads.hold(0 if found is None else len(found.value))
    reservation = await reads.reserve(operations.value_bytes(namespace_id, [key]))
    try:
        found = await operations.read(namespace_id, key, cache_ttl)
    except BaseException:
        reservation.release()
        raise
    reservation.settle(0 if found is None else len(found.value))
    return found, reservation


async def read_value(
    request: web.Request, operations: Operations, namespace_id: str, key: bytes
) -> tuple[Found | None, Reservation]:
    """``read_found`` for a routed request (its read budget and ``cache_ttl``)."""
    return await read_found(operations, request.app[READS], namespace_id, key, _cache_ttl(request))


def _metadata_json(raw: bytes | None) -> Any:
    return None if raw is None else json.loads(raw)


def _key_json(name: bytes, header: RecordHeader) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name.decode()}
    if header.expiration:
        entry["expiration"] = header.expiration
    if header.metadata is not None:
        entry["metadata"] = json.loads(header.metadata)
    return entry


async def list_keys(request: web.Request) -> web.StreamResponse:
    limit = paging.http_list_limit(int_param(request, "limit"))
    operations = operations_of(request)
    after = await read_session_of(operations, request)
    listing = await operations.list_keys(
        namespace_id_of(request),
        validation.query_bytes(request.raw_path.partition("?")[2], "prefix"),
        limit,
        request.query.get("cursor", "").encode(),
    )
    keys = [_key_json(name, header) for name, header in listing.keys]
    answer = envelope(keys, result_info={"count": len(keys), "cursor": listing.cursor.decode()})
    answer.headers.update(list_session(operations, after, (h for _, h in listing.keys)))
    return answer


# ---- values -------------------------------------------------------------


def _key_not_found() -> web.Response:
    return failure(404, CODE_KEY_NOT_FOUND, "key not found")


def _cache_ttl(request: web.Request) -> str | None:
    if not request.query_string:
        return None
    return request.query.get("cache_ttl") or None


async def get_value(request: web.Request) -> web.StreamResponse:
    return await answer_get(
        operations_of(request),
        request.app[READS],
        namespace_id_of(request),
        raw_key_of(request),
        request,
    )


# The values routes, given their target first (so that ``entry`` can bind it).


async def answer_get(
    operations: Operations, reads: ByteBudget, namespace_id: str, key: bytes, request: web.Request
) -> web.StreamResponse:
    after = await read_session_of(operations, request)
    found, reservation = await read_found(operations, reads, namespace_id, key, _cache_ttl(request))
    try:
        session = read_session(
            operations, after, namespace_id, [(key, None if found is None else found.header)]
        )
        if found is None:
            missing = _key_not_found()
            missing.headers.update(session)
            return missing
        value = found.value
        expiration = found.header.expiration
        if len(value) <= INLINE_VALUE_BYTES:
            # One write with the headers; the transport takes it without waiting.
            response = web.Response(body=value, content_type=OCTET_STREAM)
            if expiration:
                response.headers["expiration"] = str(expiration)
            response.headers.update(session)
            return response
        headers = {"Content-Type": OCTET_STREAM, **session}
        if expiration:
            headers["expiration"] = str(expiration)
        return await send_value(request, value, headers)
    finally:
        reservation.release()


def _part_metadata(raw: bytes, content_type: str) -> bytes:
    """A multipart ``metadata`` part: JSON text; a text/plain part that is not JSON is a string."""
    if content_type.startswith("text/plain"):
        try:
            json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            try:
                text = raw.decode()
            except UnicodeDecodeError as exc:
                raise InvalidRequest("Metadata must be valid JSON.") from exc
            return validation.metadata_value(text)
    return raw


async def _read_part(part: BodyPartReader, upload: Upload, keep: int) -> tuple[bytes, int]:
    """The first ``keep`` bytes of ``part`` and its whole length (counted, not buffered)."""
    chunks = bytearray()
    length = 0
    while chunk := await part.read_chunk():
        size = len(chunk)
        length += size
        kept = size if length <= keep else 0
        if kept:
            chunks += chunk
        await count_part_chunk(upload, size, kept)
    return bytes(chunks), length


async def _multipart_value(request: web.Request) -> tuple[bytes, int, bytes | None]:
    """The ``value`` part (buffered up to the value limit), its length and ``metadata``."""
    async with multipart_upload(request) as upload:
        return await _multipart_parts(request, upload)


async def _multipart_parts(request: web.Request, upload: Upload) -> tuple[bytes, int, bytes | None]:
    value: bytes | None = None
    length = 0
    metadata: bytes | None = None
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise InvalidRequest("Nested multipart bodies are not supported.")
            if part.name == "value":
                value, length = await _read_part(part, upload, validation.MAX_VALUE_BYTES)
            elif part.name == "metadata":
                raw, size = await _read_part(part, upload, validation.MAX_METADATA_BYTES * 8)
                if size > len(raw):
                    raise ValueTooLarge(
                        f"Metadata length of {size} exceeds limit of"
                        f" {validation.MAX_METADATA_BYTES}."
                    )
                content_type = part.headers.get("Content-Type", "application/json")
                metadata = _part_metadata(raw, content_type)
            else:
                await _read_part(part, upload, 0)
    except (ValueError, AssertionError, LookupError, TypeError) as exc:
        if isinstance(exc, RumorError):
            raise
        raise InvalidRequest(f"The multipart body is malformed: {exc}") from exc
    if value is None:
        raise InvalidRequest('The multipart body must have a "value" part.')
    return value, length, metadata


async def put_value(request: web.Request) -> web.StreamResponse:
    return await answer_put(
        operations_of(request),
        request.app[READS],
        namespace_id_of(request),
        raw_key_of(request),
        request,
    )


async def answer_put(
    operations: Operations, reads: ByteBudget, namespace_id: str, key: bytes, request: web.Request
) -> web.StreamResponse:
    metadata: bytes | None = None
    if request.content_type.startswith("multipart/"):
        value, length, metadata = await _multipart_value(request)
    else:
        value, length = await read_body(request, validation.MAX_VALUE_BYTES)
    validation.value_length(length)
    if request.query_string:
        expiration = validation.query_seconds(request.query.get("expiration"), "expiration")
        expiration_ttl = validation.query_seconds(
            request.query.get("expiration_ttl"), "expiration_ttl"
        )
    else:
        expiration = expiration_ttl = None
    item = PutItem(key, value, expiration, expiration_ttl, metadata)
    after = await session_of(operations, request)
    applied = await operations.put(namespace_id, item, gather=True)
    answer = json_answer(EMPTY_SUCCESS)
    answer.headers.update(write_session(after, applied.header.origin, applied.header.seq))
    return answer


async def delete_value(request: web.Request) -> web.StreamResponse:
    return await answer_delete(
        operations_of(request),
        request.app[READS],
        namespace_id_of(request),
        raw_key_of(request),
        request,
    )


async def answer_delete(
    operations: Operations, reads: ByteBudget, namespace_id: str, key: bytes, request: web.Request
) -> web.StreamResponse:
    after = await session_of(operations, request)
    applied = await operations.delete(namespace_id, key, gather=True)
    answer = json_answer(EMPTY_SUCCESS)
    answer.headers.update(write_session(after, applied.header.origin, applied.header.seq))
    return answer


async def get_metadata(request: web.Request) -> web.StreamResponse:
    operations = operations_of(request)
    after = await read_session_of(operations, request)
    namespace_id, key = namespace_id_of(request), raw_key_of(request)
    found, reservation = await read_value(request, operations, namespace_id, key)
    session = read_session(
        operations, after, namespace_id, [(key, None if found is None else found.header)]
    )
    reservation.release()  # only the metadata is sent
    answer = _key_not_found() if found is None else envelope(_metadata_json(found.header.metadata))
    answer.headers.update(session)
    return answer


# ---- bulk ---------------------------------------------------------------


def _bulk_item(index: int, raw: Any) -> PutItem:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"Bulk item {index} must be an object with a key and a value.")
    key, value = raw.get("key"), raw.get("value")
    if not isinstance(key, str) or not isinstance(value, str):
        raise InvalidRequest(f"Bulk item {index} must have a string key and a string value.")
    if raw.get("base64"):
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequest(f"Bulk item {index} has a value that is not base64.") from exc
    else:
        data = value.encode()
    expiration = raw.get("expiration")
    ttl = raw.get("expiration_ttl")
    metadata = raw.get("metadata")
    return PutItem(
        key=key.encode(),
        value=data,
        expiration=None if expiration is None else validation.integer(expiration, "expiration"),
        expiration_ttl=None if ttl is None else validation.integer(ttl, "expiration_ttl"),
        metadata=None if metadata is None else validation.metadata_value(metadata),
    )


async def bulk_put(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    if not isinstance(body, list):
        raise InvalidRequest("The request body must be a list of key-value pairs.")
    items = [_bulk_item(index, raw) for index, raw in enumerate(body)]
    operations = operations_of(request)
    after = await session_of(operations, request)
    written = await operations.bulk_put(namespace_id_of(request), items)
    answer = envelope({"successful_key_count": written.key_count, "unsuccessful_keys": []})
    answer.headers.update(write_session(after, operations.replica.node_id, written.seq))
    return answer


async def bulk_delete(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    if not isinstance(body, list) or not all(isinstance(key, str) for key in body):
        raise InvalidRequest("The request body must be a list of key names.")
    operations = operations_of(request)
    after = await session_of(operations, request)
    written = await operations.bulk_delete(namespace_id_of(request), [key.encode() for key in body])
    answer = envelope({"successful_key_count": written.key_count, "unsuccessful_keys": []})
    answer.headers.update(write_session(after, operations.replica.node_id, written.seq))
    return answer


async def bulk_get(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    keys = body.get("keys") if isinstance(body, dict) else None
    names = [k.encode() for k in keys if isinstance(k, str)] if isinstance(keys, list) else []
    operations = operations_of(request)
    after = await read_session_of(operations, request)
    reservation = await request.app[READS].reserve(
        operations.value_bytes(namespace_id_of(request), names)
    )
    try:
        values = await bulk_get_values(
            operations, namespace_id_of(request), body, with_expiration=True
        )
        session = read_session(
            operations, after, namespace_id_of(request), [(name, None) for name in names]
        )
        encoded = dumps(
            {"success": True, "errors": [], "messages": [], "result": {"values": values}}
        ).encode()
        del values
        reservation.settle(len(encoded))
        headers = {"Content-Type": "application/json; charset=utf-8", **session}
        return await send_value(request, encoded, headers)
    finally:
        reservation.release()
