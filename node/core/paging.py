"""List pages: how many entries a page holds, where the next one starts, which page.

A key list or a gRPC namespace list is read a page at a time: ``list_limit``
(and the HTTP API's stricter ``http_list_limit``, ``namespace_list_limit`` for
ListNamespaces) sizes a page, and an opaque cursor (``encode_cursor``, read
back by ``cursor``) names the key the next page starts after. The HTTP
namespace list pages by number instead (``page``, ``per_page``). Messages
follow Workers KV's wording, as in ``validation``.
"""

from __future__ import annotations

import base64
import binascii

from rumor.node.core.errors import InvalidRequest
from rumor.node.core.validation import MAX_KEY_BYTES

MAX_LIST_LIMIT = 1000
DEFAULT_LIST_LIMIT = 1000
HTTP_MIN_LIST_LIMIT = 10
MAX_PER_PAGE = 1000
DEFAULT_PER_PAGE = 20
CURSOR_FORMAT = b"\x01"


def list_limit(limit: int | None) -> int:
    """A list page size: 1..1000; absent, 0 or negative means the default (1000).

    workerd drops a limit of 0 or less rather than sending it, so the node
    reads it the same way from every API.
    """
    if limit is None or limit <= 0:
        return DEFAULT_LIST_LIMIT
    if limit > MAX_LIST_LIMIT:
        raise InvalidRequest(
            f"Invalid key_count_limit of {limit}. Please specify an integer less than"
            f" {MAX_LIST_LIMIT}."
        )
    return limit


def http_list_limit(limit: int | None) -> int:
    """The list limit of the Cloudflare-compatible HTTP API: 10..1000 (default 1000;
    0 or less also means the default, as everywhere)."""
    if limit is not None and 0 < limit < HTTP_MIN_LIST_LIMIT:
        raise InvalidRequest(
            f"Invalid key_count_limit of {limit}. Please specify an integer greater than or"
            f" equal to {HTTP_MIN_LIST_LIMIT}."
        )
    return list_limit(limit)


def namespace_list_limit(limit: int) -> int | None:
    """A gRPC ListNamespaces page size: 1..1000; 0 (what a client that does not page
    sends) means every namespace in one answer, as before paging existed."""
    if limit == 0:
        return None
    return list_limit(limit)


def encode_cursor(last_key: bytes) -> bytes:
    """An opaque cursor meaning "start after ``last_key``"."""
    return base64.urlsafe_b64encode(CURSOR_FORMAT + last_key).rstrip(b"=")


def cursor(raw: bytes) -> bytes | None:
    """The key a cursor starts after, or None for an empty cursor."""
    if not raw:
        return None
    try:
        decoded = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        decoded = b""
    last_key = decoded[1:]
    if decoded[:1] != CURSOR_FORMAT or not last_key or len(last_key) > MAX_KEY_BYTES:
        raise InvalidRequest(_invalid_cursor(raw))
    try:
        last_key.decode()
    except UnicodeDecodeError as exc:
        raise InvalidRequest(_invalid_cursor(raw)) from exc
    return last_key


def _invalid_cursor(raw: bytes) -> str:
    shown = raw[:64].decode("utf-8", "replace")
    return f'Invalid cursor "{shown}". Pass the cursor returned by the previous list call.'


def page(raw: int | None) -> int:
    """A page number of the HTTP namespace list: 1 or more (default 1)."""
    if raw is None:
        return 1
    if raw < 1:
        raise InvalidRequest(f"Invalid page of {raw}. Please specify an integer greater than 0.")
    return raw


def per_page(raw: int | None) -> int:
    """Namespaces per page of the HTTP list: 1..1000 (default 20; wrangler asks for 1000)."""
    if raw is None:
        return DEFAULT_PER_PAGE
    if not 1 <= raw <= MAX_PER_PAGE:
        raise InvalidRequest(
            f"Invalid per_page of {raw}. Please specify an integer from 1 to {MAX_PER_PAGE}."
        )
    return raw
