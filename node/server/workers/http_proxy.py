"""HTTP requests a worker passes to its owner's private HTTP socket, as they are.

The worker answers KV data routes itself only through the owner's state, so
it hands the whole request on — method, path, headers and a streamed body —
and streams the owner's answer back. The console, ``/metrics`` and
``/healthz`` answer as the owner sees the node.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

# Set per connection hop by hop, not passed on (RFC 9110 §7.6.1).
_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
CLIENT_ADDRESS_HEADER = "Rumor-Client-Address"


def build_proxy(owner_http_path: str, client_max_size: int) -> web.Application:
    """An app that forwards every request to the owner's HTTP listener on its socket."""
    state: dict[str, aiohttp.ClientSession] = {}

    async def open_session(_: web.Application) -> None:
        connector = aiohttp.UnixConnector(path=owner_http_path, limit=0)
        state["session"] = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def close_session(_: web.Application) -> None:
        await state["session"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        headers["Host"] = request.host
        headers[CLIENT_ADDRESS_HEADER] = request.remote or ""
        body = request.content if request.body_exists else None
        async with state["session"].request(
            request.method,
            URL(f"http://owner{request.raw_path}", encoded=True),
            headers=headers,
            data=body,
            allow_redirects=False,
        ) as answer:
            response = web.StreamResponse(status=answer.status, reason=answer.reason)
            for key, value in answer.headers.items():
                if key.lower() not in _HOP_HEADERS:
                    response.headers.add(key, value)
            if answer.content_length is not None:
                response.content_length = answer.content_length
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    @web.middleware
    async def every_request(request: web.Request, handler: Any) -> web.StreamResponse:
        return await forward(request)  # whatever the path (a key may hold a newline)

    app = web.Application(client_max_size=client_max_size, middlewares=[every_request])
    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    return app
