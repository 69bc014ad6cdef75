"""The web console in a real browser: headless Chromium against a 2-node cluster.

A namespace and a key created in node A's console appear in node B's console
within 2 s; every view fits 1280x800 and 390x844 without horizontal scroll,
axe-core finds no serious or critical problem and Tab reaches every control.
The experiments view renders reports from Markdown and serves only files inside
--experiments-dir. The console runs under its real Content-Security-Policy and
logs no violation of it. A write's spread lists every node, and the audit
digests of a converged cluster agree. With an API token the console needs a
session cookie and a CSRF token for changes.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import js_clients
from tests.support.browser import chromium, chromium_missing
from tests.support.cluster import Cluster
from tests.support.nodes import NodeProcess

VIEWS = ("cluster", "data", "convergence", "experiments")
VIEWPORTS = ({"width": 1280, "height": 800}, {"width": 390, "height": 844})
VISIBLE_WITHIN_S = 2.0
FOCUSABLE = "a[href], button, input, select, textarea, [tabindex]:not([tabindex='-1'])"
# Every enabled, visible focusable element (radio groups are one Tab stop each).
_FOCUSABLES_JS = """(selector) => {
  const seen = new Set();
  return [...document.querySelectorAll(selector)].filter((e) => {
    if (e.disabled || e.closest('[hidden]') || e.getClientRects().length === 0) return false;
    if (e.type === 'radio') { if (seen.has(e.name)) return false; seen.add(e.name); }
    return true;
  }).map((e, i) => { e.dataset.focusId = String(i); return String(i); });
}"""


@pytest.fixture(scope="module")
def experiments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("console")
    runs = root / "experiments"
    (runs / "steady-1").mkdir(parents=True)
    (runs / "steady-1" / "report.md").write_text(
        "# steady\n\nconverged in 41 ms\n\n| p50 | p99 |\n|---|---|\n| 4 | 41 |\n\n"
        "![t-visibility](tvis.png)\n\n<script>alert(1)</script>\n"
    )
    (runs / "steady-1" / "tvis.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(16))
    (root / "secret.md").write_text("not for the console\n")
    (runs / "escape.md").symlink_to(root / "secret.md")
    return runs


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, experiments: Path) -> Iterator[Cluster]:
    nodes = Cluster(
        tmp_path_factory.mktemp("cluster"),
        2,
        "--http", "127.0.0.1:0", "--experiments-dir", str(experiments),
    )  # fmt: skip
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = chromium_missing()
    if missing:
        pytest.fail(missing, pytrace=False)
    with chromium() as launched:
        yield launched


def _url(node: NodeProcess, view: str = "cluster") -> str:
    return f"http://{node.http}/ui/#{view}"


def _page(browser: Any, **options: Any) -> tuple[Any, list[str]]:
    """A page under the console's real Content-Security-Policy, and the CSP violations
    it reports (Chromium logs each one to the console)."""
    page = browser.new_context(**options).new_page()
    violations: list[str] = []

    def seen(message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            violations.append(message.text)

    page.on("console", seen)
    return page, violations


def _wait_text(page: Any, selector: str, wanted: Any, timeout_s: float = 5.0) -> str:
    """Poll ``selector``'s text from Python until ``wanted(text)``; the text."""
    deadline = time.monotonic() + timeout_s
    while True:
        locator = page.locator(selector)
        text = locator.first.inner_text() if locator.count() else ""
        if wanted(text):
            return str(text)
        if time.monotonic() > deadline:
            raise AssertionError(f"{selector}: {text!r} after {timeout_s} s")
        page.wait_for_timeout(50)


def _live(page: Any) -> None:
    _wait_text(page, "#live", lambda text: text == "live")


def test_a_key_put_on_one_node_appears_in_the_other_nodes_console(
    cluster: Cluster, browser: Any
) -> None:
    a_node, b_node = cluster.nodes
    a, a_violations = _page(browser)
    b, b_violations = _page(browser)
    a.goto(_url(a_node, "data"))
    b.goto(_url(b_node, "data"))
    for page in (a, b):
        _live(page)
    # B holds a Watch stream to A (shown in its cluster view) before A writes.
    _wait_text(b, "#watch-streams", lambda text: text == "1 of 1")
    a.fill("#ns-title", "CONSOLE")
    a.click("#ns-create")
    _wait_text(a, "#data-message", lambda text: "CONSOLE" in text)
    b.locator("#ns-select option", has_text="CONSOLE").wait_for(state="attached", timeout=5000)
    b.select_option("#ns-select", label="CONSOLE")
    a.fill("#key-name", "greeting")
    a.fill("#key-value", '{"hello": "world"}')
    a.fill("#key-metadata", '{"by": "console"}')
    a.click("#key-put")
    _wait_text(a, "#data-message", lambda text: text == "Saved greeting.")
    saved = time.monotonic()
    b.wait_for_selector("#keys button:text-is('greeting')", timeout=VISIBLE_WITHIN_S * 1000)
    assert time.monotonic() - saved <= VISIBLE_WITHIN_S
    b.click("#keys button:text-is('greeting')")
    _wait_text(b, "#value-body", lambda text: "hello" in text)
    b.check("input[name='value-mode'][value='json']")
    assert json.loads(b.text_content("#value-body") or "") == {"hello": "world"}
    assert '{"by":"console"}' in (b.text_content("#value-view") or "")
    # B's convergence view shows the write's spread: when each node applied it, from
    # B's own Watch and from the Watch stream B holds to A.
    b.click("button[data-view='convergence']")
    write = b.locator("#writes li[data-key='greeting']")
    every_node = {a_node.node_id, b_node.node_id}
    deadline = time.monotonic() + 5.0
    while True:
        spans = write.locator("[data-member]")
        members = {spans.nth(i).get_attribute("data-member") for i in range(spans.count())}
        if members == every_node or time.monotonic() > deadline:
            break
        b.wait_for_timeout(50)
    assert members == every_node, members
    for text in write.locator("[data-member]").all_inner_texts():
        assert re.fullmatch(r" ?\S+ \+-?\d+ ms", text), text
    # Every alive member's audit digest agrees once the cluster has converged.
    b.click("button[data-view='cluster']")
    _wait_text(b, "#audit-agreement", lambda text: text.startswith("agree"), timeout_s=10.0)
    a.close()
    b.close()
    assert not a_violations and not b_violations, a_violations + b_violations


def test_every_view_fits_is_accessible_and_reachable_by_tab(cluster: Cluster, browser: Any) -> None:
    axe = (js_clients.install().root / "node_modules" / "axe-core" / "axe.min.js").read_text()
    problems: list[str] = []
    for viewport in VIEWPORTS:
        page, violations = _page(browser, viewport=viewport)
        page.goto(_url(cluster.nodes[0]))
        _live(page)
        page.evaluate(axe)
        for view in VIEWS:
            page.click(f"button[data-view='{view}']")
            page.wait_for_selector(f"#view-{view}:not([hidden])")
            if view == "experiments":  # the report, rendered from Markdown
                page.click("#runs button:text-is('steady-1')")
                page.locator("#report h1:text-is('steady')").wait_for()
                assert page.locator("#report table td").count() == 2
                assert page.locator("#report script").count() == 0
                assert "tvis.png" in (page.locator("#report img").first.get_attribute("src") or "")
            width = page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            if width[0] > width[1]:
                problems.append(f"{view} at {viewport}: scrollWidth {width[0]} > {width[1]}")
            found = page.evaluate(
                "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
                ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"
            )
            problems.extend(f"{view} at {viewport}: axe {item}" for item in found)
            # A live view may re-render while it is walked (the cluster keeps changing
            # under load): a second walk must then reach what the first missed.
            missed = _tab_walk(page)
            if missed:
                missed = _tab_walk(page)
            if missed:
                problems.append(f"{view} at {viewport}: Tab misses {sorted(missed)}")
        page.context.close()
        problems.extend(f"at {viewport}: {violation}" for violation in violations)
    assert not problems, "\n".join(problems)


def _get(url: str, headers: dict[str, str] | None = None, data: bytes | None = None,
         method: str = "GET") -> tuple[int, bytes, Any]:  # fmt: skip
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers


def test_experiment_files_outside_the_directory_are_refused(cluster: Cluster) -> None:
    base = f"http://{cluster.nodes[0].http}/ui/api/experiments"
    status, body, _ = _get(base)
    assert status == 200
    runs = json.loads(body)["result"]["runs"]
    assert [run["report"] for run in runs] == ["steady-1/report.md"]
    assert runs[0]["plots"] == ["steady-1/tvis.png"]
    status, body, headers = _get(base + "/file?path=steady-1/report.md")
    assert status == 200 and b"converged in 41 ms" in body
    status, body, headers = _get(base + "/file?path=steady-1/tvis.png")
    assert status == 200 and headers["Content-Type"] == "image/png"
    status, body, _ = _get(base + "/report?path=steady-1/report.md")
    rendered = json.loads(body)["result"]
    assert status == 200 and "<h1>steady</h1>" in rendered["html"]
    assert "<script>" not in rendered["html"] and rendered["images"] == ["steady-1/tvis.png"]
    for path in ("../secret.md", "steady-1/../../secret.md", "%2Fetc%2Fpasswd", "escape.md"):
        for endpoint in ("file", "report"):
            status, body, _ = _get(f"{base}/{endpoint}?path={path}")
            assert status == 400, (endpoint, path, status)
            assert b"not for the console" not in body


def test_with_a_token_the_console_needs_a_session_and_csrf(tmp_path: Path) -> None:
    token = "console-test-token"
    node = NodeProcess(tmp_path / "data", "--http", "127.0.0.1:0", "--api-token", token)
    node.start()
    try:
        api = f"http://{node.http}/ui/api"
        for path in ("/status", "/experiments", "/experiments/file?path=a.md",
                     "/experiments/report?path=a.md"):  # fmt: skip
            assert _get(api + path)[0] == 401, path
        assert _get(api + "/session")[0] == 200
        assert _get(f"http://{node.http}/ui/")[0] == 200
        login = json.dumps({"token": "wrong"}).encode()
        json_type = {"Content-Type": "application/json"}
        assert _get(api + "/login", json_type, login, "POST")[0] == 403
        login = json.dumps({"token": token}).encode()
        status, body, headers = _get(api + "/login", json_type, login, "POST")
        assert status == 200
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        csrf = json.loads(body)["result"]["csrf"]
        session = {"Cookie": cookie.split(";", 1)[0]}
        assert _get(api + "/status", session)[0] == 200
        create = json.dumps({"title": "T"}).encode()
        assert _get(api + "/namespaces", {**session, **json_type}, create, "POST")[0] == 403
        with_csrf = {**session, **json_type, "X-CSRF-Token": csrf}
        assert _get(api + "/namespaces", with_csrf, create, "POST")[0] == 200
        bearer = {"Authorization": f"Bearer {token}"}
        assert _get(api + "/namespaces", bearer)[0] == 200
    finally:
        node.stop()


def _tab_walk(page: Any) -> set[str]:
    """The focusable elements that pressing Tab from the top does not reach."""
    wanted = set(page.evaluate(_FOCUSABLES_JS, FOCUSABLE))
    page.evaluate("document.activeElement && document.activeElement.blur()")
    reached: set[str] = set()
    for _ in range(len(wanted) + 2):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.dataset.focusId || ''"))
    return wanted - reached
