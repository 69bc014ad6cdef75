"""The console's report renderer: Markdown structure in, nothing that can run out."""

from __future__ import annotations

import re

from rumor.node.server.console.markdown import FILE_ENDPOINT, render_report

REPORT = "runs/steady-1/report.md"


def _html(text: str) -> str:
    return render_report(text, REPORT).html


def test_structure_is_rendered() -> None:
    html = _html(
        "# Steady\n\n## Latency\n\n| p50 | p99 |\n|---|---|\n| 4 ms | 41 ms |\n\n"
        "- one\n- two\n\n1. first\n\n`inline`\n\n```\nmake bench\n```\n\n"
        "[the docs](https://example.com/docs) and [notes](notes.md#top)\n"
    )
    assert "<h1>Steady</h1>" in html and "<h2>Latency</h2>" in html
    assert "<table>" in html and "<th>p50</th>" in html and "<td>41 ms</td>" in html
    assert "<ul>\n<li>one</li>" in html and "<ol>\n<li>first</li>" in html
    assert "<code>inline</code>" in html and "<pre><code>make bench\n</code></pre>" in html
    assert '<a href="https://example.com/docs" rel="noreferrer">the docs</a>' in html
    assert f'<a href="{FILE_ENDPOINT}runs/steady-1/notes.md">notes</a>' in html


def test_images_point_at_the_report_directory() -> None:
    report = render_report("![t-visibility](tvis.png)\n\n![cdf](plots/cdf%20all.png)\n", REPORT)
    assert f'<img src="{FILE_ENDPOINT}runs/steady-1/tvis.png" alt="t-visibility"' in report.html
    assert f'src="{FILE_ENDPOINT}runs/steady-1/plots/cdf%20all.png"' in report.html
    assert report.images == ("runs/steady-1/tvis.png", "runs/steady-1/plots/cdf all.png")


def test_an_injection_attempt_renders_as_text() -> None:
    html = _html(
        "<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n"
        "[a](javascript:alert(1)) [b](JaVaScRiPt:alert(1)) [c](java%0ascript:alert(1))\n"
        "[d](vbscript:x) [e](data:text/html;base64,PHNjcmlwdD4=) [f](file:///etc/passwd)\n"
        '[g](" onmouseover="alert(1)) [h](//evil.example/x) [i](\\\\evil\\x)\n\n'
        "![j](javascript:alert(1)) ![k](https://evil.example/track.png)"
        " ![l](data:image/png;base64,AAAA)\n\n"
        "[ref]: javascript:alert(2)\n\n[m][ref]\n\n"
        '```js" onclick="alert(1)\n</code><script>alert(1)</script>\n```\n'
    )
    assert "<script" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for attribute in re.findall(r'(?:href|src)="([^"]*)"', html):
        assert attribute.startswith(FILE_ENDPOINT) or attribute.startswith("#"), attribute
    assert re.search(r"<[^>]* on\w+=", html) is None  # no event handler attribute
    for tag in re.findall(r"<[^>]+>", html):
        assert "javascript" not in tag.lower() and "data:" not in tag, tag


def test_paths_outside_the_experiments_directory_keep_no_address() -> None:
    report = render_report(
        "[up](../../../etc/passwd) ![p](../../../secret.png) [abs](/etc/x)", REPORT
    )
    assert "passwd" not in "".join(re.findall(r'href="([^"]*)"', report.html))
    assert "<a>up</a>" in report.html and '<img alt="p"' in report.html
    assert "<a>abs</a>" in report.html and report.images == ()
