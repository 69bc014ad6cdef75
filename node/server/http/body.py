"""Reading a request body: within the body limit, the upload budget and its clocks.

Every route that reads a body reads it here (``read_body``) or, for a
multipart body, counts its parts here (``multipart_upload``), so that no
body escapes the upload budget (``upload_budget``: room node-wide, an idle and
a total deadline). A body that had arrived whole before the handler ran — a
small PUT comes in one segment with its headers — is taken as it is: it waits
on no client, so it takes no room and starts no clock (the hot path).

A body larger than ``MAX_BODY_BYTES`` is refused 413: before any of it is
read when its Content-Length says so, else when the limit is crossed. Past
``keep`` bytes a body is counted, not buffered (so a value's PUT can report
the whole length of a value over the limit), and takes room only for what it
keeps.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rumor.node.core import validation
from rumor.node.core.errors import UnsupportedMediaType, ValueTooLarge
from rumor.node.server.http.request import MAX_BODY_BYTES
from rumor.node.server.upload_budget import Upload, UploadBudget

# Where a request finds its listener's upload budget (``entry.Entry`` puts it there: a
# request answered before routing has no app to ask).
UPLOADS = web.RequestKey("uploads", UploadBudget)


def too_large() -> ValueTooLarge:
    return ValueTooLarge(f"The request body exceeds the limit of {MAX_BODY_BYTES} bytes.")


def uploads_of(request: web.Request) -> UploadBudget:
    return request[UPLOADS]


async def read_body(request: web.Request, keep: int = MAX_BODY_BYTES) -> tuple[bytes, int]:
    """The body's first ``keep`` bytes and its whole length."""
    content = request.content
    if content.is_eof():  # arrived whole: nobody to wait for
        body = await request.read()
        return body[:keep] if len(body) > keep else body, len(body)
    declared = request.content_length
    if declared is not None and declared > MAX_BODY_BYTES:
        raise too_large()
    kept = bytearray()
    length = 0
    async with uploads_of(request).upload() as upload:
        if declared is not None:
            await upload.declare(min(declared, keep))
        while chunk := await content.readany():
            size = len(chunk)
            length += size
            if length > MAX_BODY_BYTES:
                raise too_large()
            room = keep - len(kept)
            taken = size if size <= room else max(room, 0)
            if taken:
                kept += chunk if taken == size else chunk[:taken]
            await upload.received(size, taken)
    return bytes(kept), length


def multipart_upload(request: web.Request) -> Upload:
    """The upload a multipart body's parts are counted against (``count_part_chunk``)."""
    return uploads_of(request).upload()


async def count_part_chunk(upload: Upload, size: int, kept: int) -> None:
    """A multipart chunk of ``size`` bytes arrived, ``kept`` of them buffered."""
    await upload.received(size, kept)
    if upload.total > MAX_BODY_BYTES:
        raise too_large()


async def json_body(request: web.Request) -> Any:
    """The body as JSON; only as ``application/json`` (415 otherwise, before it is read)."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            "The request body must be JSON sent as Content-Type: application/json;"
            f" got {request.content_type!r}."
        )
    body, _ = await read_body(request)
    return validation.json_body(body)
