"""What every HTTP route shares: Cloudflare's envelope, and reading a request.

Responses are Cloudflare's envelope ``{success, errors: [{code, message}],
messages, result, result_info}``. Keys are taken from the raw path and
percent-decoded to bytes, so ``a%2Fb`` is the key ``a/b``. Bodies are read
in ``body``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from aiohttp import web

from rumor.node.core import validation
from rumor.node.core.errors import InvalidRequest
from rumor.node.server.admission import ByteBudget
from rumor.node.server.operations import Operations

MAX_BODY_BYTES = 128 * 1024 * 1024
SEND_CHUNK_BYTES = 256 * 1024  # a value is written in chunks, each awaiting the socket
DRAIN_BYTES = 1024 * 1024  # a refused request's body read rather than cut off
DRAIN_TIMEOUT_S = 1.0  # ...unless its client stalls: then the connection is closed
CODE_AUTH = 10000
CODE_INTERNAL = 10000
CODE_KEY_NOT_FOUND = 10009
# The raw path split on "/" (at most 10 times): [..., "namespaces", ns, "values", key].
KEY_SEGMENT = 10

OPERATIONS = web.AppKey("operations", Operations)
READS = web.AppKey("reads", ByteBudget)


# ---- envelope -----------------------------------------------------------


def json_answer(body: bytes, status: int = 200) -> web.Response:
    """``body`` (JSON text) as web.json_response would send it, without encoding it again."""
    return web.Response(body=body, status=status, content_type=JSON, charset="utf-8")


def envelope(result: Any = None, *, result_info: Any = None, status: int = 200) -> web.Response:
    if result_info is None and isinstance(result, dict) and not result:
        return json_answer(EMPTY_SUCCESS, status)
    body: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return json_answer(dumps(body).encode(), status)


def failure(status: int, code: int, message: str) -> web.Response:
    body = {
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": None,
    }
    return json_answer(dumps(body).encode(), status)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


JSON = "application/json"
# What every write answers: built once.
EMPTY_SUCCESS = dumps({"success": True, "errors": [], "messages": [], "result": {}}).encode()


# ---- request parsing ----------------------------------------------------


async def drain_or_close(request: web.Request) -> None:
    """Read the rest of a refused request's body when it is small (up to
    ``DRAIN_BYTES``): closing a socket with unread data resets the connection and
    the client (or a worker's proxy) loses the answer. A larger body is left
    unread, and so is the rest of one whose client sends nothing for
    ``DRAIN_TIMEOUT_S``; the caller closes the connection after the answer."""
    if request.content.is_eof():
        return
    if request.content_length is not None and request.content_length > DRAIN_BYTES:
        return
    remaining = DRAIN_BYTES
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, TimeoutError):
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            while remaining > 0 and not request.content.is_eof():
                chunk = await request.content.read(min(remaining, SEND_CHUNK_BYTES))
                if not chunk:
                    break
                remaining -= len(chunk)


async def refuse(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Answer a refused request with ``response``; when its body is left unread, send the
    answer at once and close the connection rather than read the rest.

    aiohttp would otherwise read and discard the rest for up to 10 s ("lingering
    close"), gigabytes on a fast link, for a request already refused; and closing
    before the answer is written loses it (the client sees only a reset).
    """
    protocol = request.protocol
    if request.content.is_eof() or protocol is None:
        return response
    response.force_close()
    with contextlib.suppress(ConnectionError):
        await response.prepare(request)
        await response.write_eof()
    protocol.force_close()
    return response


def connection_closed(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def client_gone(request: web.BaseRequest, error: BaseException) -> bool:
    """Whether ``error`` is the client going away (a connection error, the connection closed)."""
    return isinstance(error, ConnectionError) and connection_closed(request)


def operations_of(request: web.Request) -> Operations:
    return request.app[OPERATIONS]


def namespace_id_of(request: web.Request) -> str:
    return request.match_info["namespace_id"]


# A "%" not followed by two hex digits: JavaScript's decodeURIComponent refuses it.
_BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def decode_key(segment: str) -> bytes:
    """A key percent-decoded from a raw path segment (``+`` stays ``+``); a segment
    that does not decode to UTF-8 is refused as Workers KV refuses it."""
    key = unquote_to_bytes(segment)
    if _BROKEN_ESCAPE.search(segment) or not _is_utf8(key):
        raise InvalidRequest("Could not URL-decode key name")
    return key


def _is_utf8(raw: bytes) -> bool:
    if raw.isascii():
        return True
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


def raw_key_of(request: web.Request) -> bytes:
    """The key of a values/metadata route, percent-decoded from the raw path."""
    path = request.raw_path.split("?", 1)[0]
    parts = path.split("/", KEY_SEGMENT)
    return decode_key(parts[KEY_SEGMENT]) if len(parts) > KEY_SEGMENT else b""


def int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    return validation.integer(raw, name)
