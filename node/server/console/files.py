"""The experiment reports the web console shows: files under one fixed directory only.

A path asked for is taken relative to ``--experiments-dir``: a NUL, an absolute
path or a ``..`` part is refused outright, and the resolved path (symlinks
followed) must stay inside the directory, so the console cannot be made to
read any other file of the machine. Only reports and plots are served.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rumor.node.core.errors import InvalidRequest

REPORT_NAME = "report.md"
SERVED_TYPES = {
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
}
MAX_RUNS = 200  # the listing is bounded: a directory of many runs shows the newest
MAX_FILE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ExperimentRun:
    path: str  # relative to the experiments directory, "/"-separated
    modified: float
    plots: tuple[str, ...]  # relative paths of the run's PNG files


def resolve_inside(root: str, asked: str) -> Path:
    """The file ``asked`` names under ``root``; InvalidRequest when it would leave it."""
    if not root:
        raise InvalidRequest("This node has no --experiments-dir: there are no reports to show.")
    if not asked or "\x00" in asked:
        raise InvalidRequest("Give the path of a file inside the experiments directory.")
    pure = PurePosixPath(asked)
    if pure.is_absolute() or asked.startswith("\\") or ".." in pure.parts:
        raise InvalidRequest(f"The path {asked!r} must be relative and cannot contain '..'.")
    base = Path(root).resolve()
    target = (base / pure).resolve()
    if target == base or not target.is_relative_to(base):
        raise InvalidRequest(f"The path {asked!r} is outside the experiments directory.")
    return target


def read_report_file(root: str, asked: str) -> tuple[bytes, str]:
    """The bytes and content type of a report or plot under ``root``."""
    target = resolve_inside(root, asked)
    content_type = SERVED_TYPES.get(target.suffix.lower())
    if content_type is None:
        raise InvalidRequest(f"Only {', '.join(sorted(SERVED_TYPES))} files are shown.")
    if not target.is_file():
        raise InvalidRequest(f"There is no file {asked!r} in the experiments directory.")
    if target.stat().st_size > MAX_FILE_BYTES:
        raise InvalidRequest(f"The file {asked!r} is larger than {MAX_FILE_BYTES} bytes.")
    return target.read_bytes(), content_type


def list_runs(root: str) -> list[ExperimentRun]:
    """Every directory under ``root`` holding a report.md, newest first (symlinks not followed)."""
    if not root:
        return []
    base = Path(root).resolve()
    if not base.is_dir():
        return []
    runs: list[ExperimentRun] = []
    for report in base.rglob(REPORT_NAME):
        if report.is_symlink() or not report.resolve().is_relative_to(base):
            continue
        folder = report.parent
        plots = tuple(
            sorted(p.relative_to(base).as_posix() for p in folder.glob("*.png") if p.is_file())
        )
        runs.append(
            ExperimentRun(
                path=report.relative_to(base).as_posix(),
                modified=report.stat().st_mtime,
                plots=plots,
            )
        )
    runs.sort(key=lambda run: (-run.modified, run.path))
    return runs[:MAX_RUNS]
