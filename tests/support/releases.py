"""An earlier release of Rumor, built from this repository's history into its own venv.

``installed(commit)`` returns the Python of a virtualenv that has the release
at ``commit`` installed (``pip install`` of ``git archive``'s tree, so it runs
what that commit shipped, stubs and all); ``python -m rumor.node`` there runs
that release's node. The venv is cached under ``.rumor/releases/<full sha>/``
and reused by later runs (a lock keeps two runs from building it at once);
a half-built one is built again. ``Unbuildable`` says why a release cannot be
built here: no git history holding the commit (a shallow clone, an archive),
or pip could not install it.
"""

from __future__ import annotations

import fcntl
import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".rumor" / "releases"
BUILT = "built"  # written last: the venv is complete


class Unbuildable(Exception):
    """The release cannot be built on this machine; the message says why."""


def full_sha(commit: str) -> str:
    """The commit's full id, or ``Unbuildable`` when this checkout does not hold it."""
    try:
        found = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Unbuildable(f"git cannot be run here ({error})") from None
    if found.returncode != 0:
        shallow = _shallow()
        why = "a shallow clone" if shallow else "no git history holding it"
        raise Unbuildable(f"release {commit} is not in this checkout ({why})")
    return found.stdout.strip()


def _shallow() -> bool:
    result = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--is-shallow-repository"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout.strip() == "true"


def installed(commit: str, *, timeout_s: float = 900) -> Path:
    """The Python of a venv running the release at ``commit`` (built once, then cached)."""
    sha = full_sha(commit)
    home = CACHE / sha
    home.mkdir(parents=True, exist_ok=True)
    python = home / "venv" / "bin" / "python"
    with (home / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent run builds it; this one waits
        if (home / BUILT).exists() and python.exists():
            return python
        _build(sha, home, timeout_s)
        (home / BUILT).write_text(sha + "\n")
    return python


def _build(sha: str, home: Path, timeout_s: float) -> None:
    source, venv = home / "src", home / "venv"
    for stale in (source, venv):
        shutil.rmtree(stale, ignore_errors=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", sha],
        capture_output=True,
        timeout=300,
        check=True,
    )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(source, filter="data")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(source)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    shutil.rmtree(source, ignore_errors=True)
    if pip.returncode != 0:
        errors = [line for line in pip.stderr.splitlines() if "ERROR" in line]
        raise Unbuildable(
            f"pip could not install release {sha[:7]}: {(errors or ['(no message)'])[-1]}"
        )
