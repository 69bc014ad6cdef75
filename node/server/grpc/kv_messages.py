"""The KV service's messages: rumor.v1 requests to ``Operations`` arguments, results to responses.

Shared by the unary calls (``kv_service``) and the Batch stream (``batch``), so
that an operation is answered the same way on either path.
"""

from __future__ import annotations

from rumor.client.session_token import SessionToken
from rumor.node.core import validation
from rumor.node.core.errors import InvalidRequest
from rumor.node.core.record import RecordHeader
from rumor.node.replication import Applied
from rumor.node.server.operations import Found, NamespaceInfo, PutItem
from rumor.node.server.sessions import write_token
from rumor.v1 import kv_pb2


def namespace_message(info: NamespaceInfo) -> kv_pb2.Namespace:
    return kv_pb2.Namespace(id=info.id, title=info.title)


def put_item(request: kv_pb2.PutRequest, value: bytes | None = None) -> PutItem:
    # Positional: a bulk put builds up to 10,000 of these.
    return PutItem(
        request.key,
        request.value if value is None else value,
        request.expiration if request.HasField("expiration") else None,
        request.expiration_ttl if request.HasField("expiration_ttl") else None,
        request.metadata if request.HasField("metadata") else None,
    )


def put_response(applied: Applied, after: SessionToken | None = None) -> kv_pb2.PutResponse:
    response = kv_pb2.PutResponse()
    fill_put_response(response, applied, after)
    return response


def fill_put_response(
    response: kv_pb2.PutResponse, applied: Applied, after: SessionToken | None = None
) -> None:
    """Fill ``response`` in place (a Batch result's own field: no message built and copied)."""
    _fill_write(response, applied, after)
    response.expiration = applied.header.expiration


def delete_response(applied: Applied, after: SessionToken | None = None) -> kv_pb2.DeleteResponse:
    response = kv_pb2.DeleteResponse()
    fill_delete_response(response, applied, after)
    return response


def fill_delete_response(
    response: kv_pb2.DeleteResponse, applied: Applied, after: SessionToken | None = None
) -> None:
    _fill_write(response, applied, after)


def _fill_write(
    response: kv_pb2.PutResponse | kv_pb2.DeleteResponse,
    applied: Applied,
    after: SessionToken | None,
) -> None:
    """What a Put's and a Delete's answers share: the version, the seq, the session."""
    header = applied.header
    version = response.version
    version.hlc = header.hlc
    version.origin = header.origin
    response.seq = header.seq
    response.session = write_token(after, header.origin, header.seq)


def found_header(header: RecordHeader, with_metadata: bool) -> kv_pb2.GetResponse:
    response = kv_pb2.GetResponse()
    _fill_found(response, header, with_metadata)
    return response


def _fill_found(response: kv_pb2.GetResponse, header: RecordHeader, with_metadata: bool) -> None:
    response.found = True
    response.expiration = header.expiration
    version = response.version
    version.hlc = header.hlc
    version.origin = header.origin
    if with_metadata and header.metadata is not None:
        response.metadata = header.metadata


TYPE_NAMES: dict[int, str] = {
    kv_pb2.VALUE_TYPE_BYTES: "bytes",
    kv_pb2.VALUE_TYPE_TEXT: "text",
    kv_pb2.VALUE_TYPE_JSON: "json",
}


def type_name(value_type: int) -> str:
    return TYPE_NAMES.get(value_type, str(value_type))


def checked_type(value_type: int) -> int:
    if value_type not in TYPE_NAMES:
        raise InvalidRequest(f'Invalid type "{value_type}". Use bytes, text or json.')
    return value_type


def cache_ttl(request: kv_pb2.GetRequest | kv_pb2.BulkGetRequest) -> int | None:
    return request.cache_ttl if request.HasField("cache_ttl") else None


def get_response(
    key: bytes, found: Found | None, value_type: int, with_metadata: bool, *, bulk: bool = False
) -> kv_pb2.GetResponse:
    response = kv_pb2.GetResponse()
    fill_get_response(response, key, found, value_type, with_metadata, bulk=bulk)
    return response


def fill_get_response(
    response: kv_pb2.GetResponse,
    key: bytes,
    found: Found | None,
    value_type: int,
    with_metadata: bool,
    *,
    bulk: bool = False,
) -> None:
    """Write the answer into ``response``, an empty one (a Batch result's ``get``, filled
    where it stands: building it apart and copying it in costs twice as much)."""
    if found is None:
        response.SetInParent()  # found=False is the default: mark the field present
        return
    _fill_found(response, found.header, with_metadata)
    if value_type == kv_pb2.VALUE_TYPE_TEXT:
        response.text = found.value.decode("utf-8", "replace")
    elif value_type == kv_pb2.VALUE_TYPE_JSON:
        response.json = (
            validation.bulk_json_value(found.value)
            if bulk
            else validation.json_value(key, found.value)
        )
    else:
        response.value = found.value
