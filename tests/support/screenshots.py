"""`make screenshots`: the web console's views on a temporary 2-node cluster, into docs/ui/."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.support.browser import chromium
from tests.support.cluster import Cluster

VIEWS = ("cluster", "data", "convergence")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as root:
        cluster = Cluster(Path(root), 2, "--http", "127.0.0.1:0")
        try:
            with chromium() as browser:
                page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
                page.goto(f"http://{cluster.nodes[0].http}/ui/#data")
                # The spread needs the stream to the other node before the writes.
                page.locator("#watch-streams", has_text="1 of 1").wait_for(state="attached")
                page.fill("#ns-title", "DEMO")
                page.click("#ns-create")
                page.wait_for_selector("#ns-select option:text-is('DEMO')", state="attached")
                for index in range(5):
                    page.fill("#key-name", f"user:{index}")
                    page.fill("#key-value", f'{{"name": "user {index}", "visits": {index * 7}}}')
                    page.click("#key-put")
                    page.wait_for_selector(f"#keys button:text-is('user:{index}')")
                page.click("#keys button:text-is('user:3')")
                page.check("input[name='value-mode'][value='json']")
                page.locator("#value-body", has_text="visits").wait_for()
                for view in VIEWS:
                    page.click(f"button[data-view='{view}']")
                    page.wait_for_selector(f"#view-{view}:not([hidden])")
                    page.locator("#live", has_text="live").wait_for()
                    if view == "cluster":  # the other node's digest polled after the writes
                        page.locator("#audit-agreement", has_text="agree (").wait_for()
                    page.screenshot(path=str(out / f"{view}.png"), full_page=True)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/ui"))
