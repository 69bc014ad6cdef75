"""The real JavaScript clients (workerd, wrangler, the Cloudflare TypeScript SDK) for tests.

Their versions are pinned in tests/js/package.json and package-lock.json;
``install()`` runs ``npm ci`` into ``.rumor/npm/`` (never into the tracked tree)
once per lockfile, under a file lock (test modules run in parallel). Without
node and npm the tests fail with a message saying what to install: nothing is
skipped silently.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO / "tests" / "js"
INSTALL_DIR = REPO / ".rumor" / "npm"
INSTALL_TIMEOUT_S = 600


@dataclass(frozen=True, slots=True)
class JsClients:
    node: str
    root: Path  # holds node_modules/

    @property
    def wrangler(self) -> list[str]:
        return [self.node, str(self.root / "node_modules" / "wrangler" / "bin" / "wrangler.js")]

    @property
    def workerd(self) -> Path:
        return self.root / "node_modules" / "@cloudflare" / "workerd-linux-64" / "bin" / "workerd"


def install() -> JsClients:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "node and npm are needed for the workerd, wrangler and TypeScript SDK tests:"
            " apt-get install -y nodejs npm (.ci/run does this)",
            pytrace=False,
        )
    lock = (PACKAGE_DIR / "package-lock.json").read_bytes()
    stamp = INSTALL_DIR / ".installed"
    digest = hashlib.sha256(lock + (PACKAGE_DIR / "package.json").read_bytes()).hexdigest()
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    with (INSTALL_DIR.parent / "npm.lock").open("w") as held:
        # Test modules run in parallel: one installs, the others wait for it.
        fcntl.flock(held, fcntl.LOCK_EX)
        if not (stamp.is_file() and stamp.read_text() == digest):
            _npm_ci(npm, digest, stamp)
    return JsClients(node, INSTALL_DIR)


def _npm_ci(npm: str, digest: str, stamp: Path) -> None:
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(PACKAGE_DIR / name, INSTALL_DIR / name)
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=INSTALL_DIR,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        env={**os.environ, "npm_config_update_notifier": "false"},
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"npm ci in {INSTALL_DIR} failed:\n{result.stderr[-3000:]}", pytrace=False)
    stamp.write_text(digest)
