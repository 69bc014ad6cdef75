"""The web console's experiment reports: ``/ui/api/experiments/...``.

The runs under ``--experiments-dir`` (``files`` reads only inside it),
a report or plot as it is, and a report rendered to HTML (``markdown``).
Each handler is given the directory; ``app`` routes and guards them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from rumor.node.core.errors import InvalidRequest
from rumor.node.server.console import files as console_files
from rumor.node.server.console import markdown as console_markdown
from rumor.node.server.http.request import envelope

Handler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


async def list_experiments(request: web.Request, root: str) -> web.StreamResponse:
    runs = await asyncio.to_thread(console_files.list_runs, root)
    return envelope(
        {
            "configured": bool(root),
            "runs": [{"report": r.path, "modified": r.modified, "plots": r.plots} for r in runs],
        }
    )


async def experiment_file(request: web.Request, root: str) -> web.StreamResponse:
    body, content_type = await asyncio.to_thread(
        console_files.read_report_file, root, request.query.get("path", "")
    )
    return web.Response(
        body=body,
        headers={
            "Content-Type": content_type,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
        },
    )


async def experiment_report(request: web.Request, root: str) -> web.StreamResponse:
    asked = request.query.get("path", "")

    def rendered() -> console_markdown.RenderedReport:
        body, _ = console_files.read_report_file(root, asked)
        if not asked.lower().endswith(".md"):
            raise InvalidRequest("Only Markdown reports (.md) are rendered.")
        if len(body) > console_markdown.MAX_RENDER_BYTES:
            raise InvalidRequest(
                f"The report is larger than {console_markdown.MAX_RENDER_BYTES} bytes:"
                " open it as a file instead."
            )
        return console_markdown.render_report(body.decode("utf-8", "replace"), asked)

    report = await asyncio.to_thread(rendered)
    return envelope({"path": asked, "html": report.html, "images": list(report.images)})


HANDLERS: dict[str, Handler] = {
    "": list_experiments,
    "/file": experiment_file,
    "/report": experiment_report,
}
