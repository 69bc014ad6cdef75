"""A bulk get's answer as JSON, shared by the REST API and the Workers binding.

Both take the body ``{keys, type?, withMetadata?, cacheTtl?}`` that workerd and
Cloudflare's clients send, and answer ``{key: value | {value, metadata} | null}``
(the REST API wraps it in ``{"values": ...}`` and adds ``expiration`` beside
``metadata`` when the key has one). Values are text or parsed JSON;
a missing key is null, with or without metadata.
"""

from __future__ import annotations

import json
from typing import Any

from rumor.node.core import validation
from rumor.node.core.errors import InvalidRequest
from rumor.node.server.operations import Found, Operations


def _value(found: Found, value_type: str) -> Any:
    if value_type == "json":
        return json.loads(validation.bulk_json_value(found.value))
    return found.value.decode("utf-8", "replace")


async def bulk_get_values(
    operations: Operations, namespace_id: str, body: Any, *, with_expiration: bool = False
) -> dict[str, Any]:
    """``with_expiration``: entries with metadata also carry ``expiration`` when the key
    has one (the REST API's, as Cloudflare's API and SDK models have it; workerd's
    binding answers ``{value, metadata}`` only)."""
    keys = body.get("keys") if isinstance(body, dict) else None
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise InvalidRequest('The request body must be {"keys": ["...", ...]}.')
    assert isinstance(body, dict)
    value_type = validation.bulk_get_type(str(body.get("type") or "text"))
    with_metadata = bool(body.get("withMetadata", False))
    results = await operations.read_many(
        namespace_id, [key.encode() for key in keys], body.get("cacheTtl")
    )
    values: dict[str, Any] = {}
    for name, found in zip(keys, results, strict=True):
        if found is None:
            values[name] = None
            continue
        value = _value(found, value_type)
        if with_metadata:
            metadata = None if found.header.metadata is None else json.loads(found.header.metadata)
            entry = {"value": value, "metadata": metadata}
            if with_expiration and found.header.expiration:
                entry["expiration"] = found.header.expiration
            values[name] = entry
        else:
            values[name] = value
    return values
