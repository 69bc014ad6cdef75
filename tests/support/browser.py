"""Debian's headless Chromium driven by Playwright, kept from reaching outside the machine.

Playwright never downloads a browser here (``PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD``):
it drives ``/usr/bin/chromium`` (``apt-get install -y chromium``; .ci/run does
it), with the flags that turn off every background connection Chromium would
otherwise make. Playwright gives each launch a fresh, temporary user-data
directory (it refuses a ``--user-data-dir`` flag) and removes it on close.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")  # before Playwright is imported
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--no-pings",
)


def chromium_missing() -> str | None:
    """Why the browser cannot run, or None."""
    if not Path(CHROMIUM).is_file():
        return f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (a Playwright ``Browser``) on a fresh profile."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=list(FLAGS),
        )
        try:
            yield browser
        finally:
            browser.close()
