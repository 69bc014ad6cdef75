"""workerd, the open-source Workers runtime, fetched from npm on first use.

The version is pinned. It is installed with ``npm install`` into
``<cache>/workerd/<version>/`` (the cache is ``.rumor/`` of the current directory
unless ``RUMOR_CACHE_DIR`` says otherwise) and used from there afterwards;
``RUMOR_WORKERD`` names a workerd binary to use instead. Commands started at
once on an empty cache install it once: the others wait on a lock file beside it.
"""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import subprocess
from pathlib import Path

WORKERD_VERSION = "1.20261117.1"
_ARCHES = {"x86_64": "64", "amd64": "64", "aarch64": "arm64", "arm64": "arm64"}
_SYSTEMS = {"linux": "linux", "darwin": "darwin"}


class WorkerdUnavailable(RuntimeError):
    """workerd cannot be found or installed; the message says what to do."""


def cache_dir() -> Path:
    return Path(os.environ.get("RUMOR_CACHE_DIR") or ".rumor").resolve()


def package_name() -> str:
    system = _SYSTEMS.get(platform.system().lower())
    arch = _ARCHES.get(platform.machine().lower())
    if system is None or arch is None:
        raise WorkerdUnavailable(
            f"workerd has no npm build for {platform.system()} {platform.machine()};"
            " set RUMOR_WORKERD to a workerd binary."
        )
    return f"@cloudflare/workerd-{system}-{arch}"


def installed_binary(root: Path) -> Path:
    return root / "node_modules" / package_name() / "bin" / "workerd"


def ensure_workerd(cache: Path | None = None) -> Path:
    """The workerd binary, installing the pinned version with npm if needed."""
    override = os.environ.get("RUMOR_WORKERD")
    if override:
        if not Path(override).is_file():
            raise WorkerdUnavailable(f"RUMOR_WORKERD={override} is not a file.")
        return Path(override)
    root = (cache or cache_dir()) / "workerd" / WORKERD_VERSION
    binary = installed_binary(root)
    if binary.is_file():
        return binary
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        raise WorkerdUnavailable(
            f"workerd {WORKERD_VERSION} comes from npm, but node and npm are not installed"
            " (e.g. `apt-get install -y nodejs npm`), or set RUMOR_WORKERD to a workerd binary."
        )
    root.mkdir(parents=True, exist_ok=True)
    with (root.parent / f"{WORKERD_VERSION}.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # released when the file closes
        if not binary.is_file():  # or another command installed it meanwhile
            _npm_install(npm, root, binary)
    return binary


def _npm_install(npm: str, root: Path, binary: Path) -> None:
    (root / "package.json").write_text('{"private": true}\n')
    result = subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(root),
            f"workerd@{WORKERD_VERSION}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not binary.is_file():
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise WorkerdUnavailable(
            f"npm could not install workerd@{WORKERD_VERSION} into {root}: " + " / ".join(tail)
        )
