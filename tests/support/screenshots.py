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
                page = browser.new_context(
                    viewport={"width": 1280, "height": 800}, bypass_csp=True
                ).new_page()
                page.goto(f"http://{cluster.nodes[0].http}/ui/#data")
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
                page.wait_for_function("document.getElementById('value-body').textContent")
                for view in VIEWS:
                    page.click(f"button[data-view='{view}']")
                    page.wait_for_selector(f"#view-{view}:not([hidden])")
                    page.wait_for_function("document.getElementById('live').textContent")
                    page.screenshot(path=str(out / f"{view}.png"), full_page=True)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/ui"))
