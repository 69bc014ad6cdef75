"""The JSON files of `rumor kv bulk` (wrangler's format), read and checked whole.

``checked_put_items`` takes an array of ``{key, value, expiration?,
expiration_ttl?, metadata?, base64?}`` objects; ``checked_delete_keys`` an
array of key names or ``{"name": ...}`` objects (what `bulk delete` and `bulk
get` read). A file that is not so shaped fails with the item at fault before
anything is written; properties that are not part of the shape are named on
stderr and ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

from rumor.client.cli_output import fail, stderr

PUT_SHAPE = (
    '[{"key": "...", "value": "...", "expiration"?, "expiration_ttl"?, "metadata"?, "base64"?}]'
)
PUT_PROPERTIES = {"key", "value", "expiration", "expiration_ttl", "metadata", "base64"}


def read_json_file(path: str) -> Any:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        fail(f'Cannot read "{path}": {exc.strerror}')
    try:
        return json.loads(text)
    except ValueError as exc:
        fail(f'"{path}" is not valid JSON: {exc}')


def checked_put_items(path: str, data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, list):
        fail(
            f'Unexpected JSON input from "{path}": expected an array of key-value objects '
            f"shaped {PUT_SHAPE}, got {type(data).__name__}."
        )
    items = []
    unexpected: set[str] = set()
    for index, item in enumerate(data):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("key"), str)
            or not isinstance(item.get("value"), str)
            or not isinstance(item.get("expiration", 0), int)
            or not isinstance(item.get("expiration_ttl", 0), int)
            or not isinstance(item.get("base64", False), bool)
        ):
            shown = json.dumps(item, ensure_ascii=False)[:200]
            fail(
                f'Item {index} of "{path}" is not a key-value object shaped {PUT_SHAPE}: '
                f"{shown}. Nothing was written."
            )
        unexpected |= set(item) - PUT_PROPERTIES
        if item.get("base64"):
            try:
                base64.b64decode(item["value"], validate=True)
            except (binascii.Error, ValueError):
                fail(
                    f'Item {index} of "{path}" has "base64": true but its value is not valid '
                    f"base64 (expected {PUT_SHAPE}). Nothing was written."
                )
        items.append({k: v for k, v in item.items() if k in PUT_PROPERTIES})
    if unexpected:
        stderr.print(
            f'Unexpected key-value properties in "{path}": '
            f"{', '.join(sorted(unexpected))} (ignored)",
            style="yellow",
        )
    return items


def checked_delete_keys(path: str, data: Any) -> list[str]:
    shape = '["key", ...] or [{"name": "key"}, ...]'
    if not isinstance(data, list):
        fail(f'Unexpected JSON input from "{path}": expected an array shaped {shape}.')
    keys = []
    for index, item in enumerate(data):
        if isinstance(item, str):
            keys.append(item)
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            keys.append(item["name"])
        else:
            fail(
                f'Item {index} of "{path}" is not a key name or {{"name": ...}}: '
                f"{json.dumps(item)[:200]}. Nothing was deleted."
            )
    return keys
