"""Experiment reports as HTML: CommonMark (plus tables) with nothing that can run.

``render_report`` turns a report.md into HTML with markdown-it-py, configured so
that the HTML cannot carry anything but text and structure:

- raw HTML in the Markdown is not passed through (``html: False``): it is shown
  as text, escaped like every other text;
- a link or an image may only point at ``http:``, ``https:``, ``mailto:`` (links)
  or a relative path; ``javascript:``, ``data:``, ``vbscript:``, ``file:`` and any
  other scheme leave the text as it was written, not a link;
- a relative path is taken from the report's own directory and served through
  the console's file endpoint (``/ui/api/experiments/file?path=...``), which
  reads only inside ``--experiments-dir``; a path that would leave that
  directory keeps no address. Images must be relative (the console's
  Content-Security-Policy allows only the node's own images).

Attribute values are escaped by markdown-it; the console shows the result in
a page whose policy runs no inline script either way.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

FILE_ENDPOINT = "/ui/api/experiments/file?path="
LINK_SCHEMES = ("http", "https", "mailto")
MAX_RENDER_BYTES = 2 * 1024 * 1024  # a larger report is refused rather than rendered


@dataclass(frozen=True, slots=True)
class RenderedReport:
    html: str
    images: tuple[str, ...]  # the report's images, relative to the experiments directory


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:
        return "invalid"


def _allowed(url: str) -> bool:
    """markdown-it's link check: a known-safe scheme or a relative reference."""
    url = url.strip()
    if url.startswith(("//", "\\")) or "\\" in url:
        return False  # a network-path reference would leave the node
    scheme = _scheme(url)
    return scheme == "" or scheme in LINK_SCHEMES


def _inside(report: str, url: str) -> str | None:
    """The path under the experiments directory that ``url``, relative to ``report``,
    names; None when it would leave it."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if not path or path.startswith("/") or "\x00" in path:
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(report), path))
    if joined == ".." or joined.startswith("../") or joined.startswith("/"):
        return None
    return joined


def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    parser.enable("table")
    parser.validateLink = _allowed  # type: ignore[method-assign]
    return parser


_PARSER = _parser()


def _rewrite(tokens: Sequence[Token], report: str, images: list[str]) -> None:
    for token in tokens:
        if token.children:
            _rewrite(token.children, report, images)
        attribute = {"link_open": "href", "image": "src"}.get(token.type)
        if attribute is None:
            continue
        url = str(token.attrGet(attribute) or "")
        if token.type == "link_open" and (url.startswith("#") or _scheme(url) in LINK_SCHEMES):
            if _scheme(url) in ("http", "https"):
                token.attrSet("rel", "noreferrer")
            continue
        target = None if _scheme(url) else _inside(report, url)
        if target is None:
            del token.attrs[attribute]  # nowhere to point at: the text stays, without address
            continue
        token.attrSet(attribute, FILE_ENDPOINT + quote(target, safe="/"))
        if token.type == "image":
            images.append(target)


def render_report(text: str, report: str) -> RenderedReport:
    """``text`` (the Markdown of the report at ``report``, a path relative to the
    experiments directory) as safe HTML, and the images it shows."""
    tokens = _PARSER.parse(text)
    images: list[str] = []
    _rewrite(tokens, report, images)
    html = _PARSER.renderer.render(tokens, _PARSER.options, {})
    return RenderedReport(html, tuple(dict.fromkeys(images)))
