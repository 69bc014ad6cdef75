"""Power cuts for real processes: an LD_PRELOAD shim records what is durable, a cut applies it.

``power/shim.c`` (compiled at test time with the system C compiler) interposes
``fsync`` and ``fdatasync`` for files and directories under one data directory
and keeps, in a state directory next to it, the durable image: each file's
contents as of its last sync (by inode) and each directory's entries as of its
last sync. Nothing else is durable: file data never synced, and creates,
renames, links and unlinks whose directory was never synced, are dropped by
``cut``, which rebuilds the data directory from that image alone (after the
process was SIGKILLed). ``arm`` makes the directory's present contents the
durable starting point, as after a clean shutdown.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SHIM_SOURCE = Path(__file__).with_name("power") / "shim.c"
ROOT_ENV = "RUMOR_POWER_ROOT"
STATE_ENV = "RUMOR_POWER_STATE"
KILL_AT_ENV = "RUMOR_POWER_KILL_AT"


def compile_shim(directory: Path) -> Path:
    """Build the shim into ``directory``; returns the shared object's path."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    assert compiler, "the power-loss tests need gcc (.ci/run installs it)"
    target = directory / "power_shim.so"
    subprocess.run(
        [compiler, "-O2", "-Wall", "-Werror", "-shared", "-fPIC", "-o", str(target),
         str(SHIM_SOURCE), "-ldl", "-lpthread"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return target


def shim_env(shim: Path, root: Path, state: Path, kill_at: int | None = None) -> dict[str, str]:
    """The environment for a process under the shim (``kill_at``: die after that sync)."""
    env = {"LD_PRELOAD": str(shim), ROOT_ENV: str(root), STATE_ENV: str(state)}
    if kill_at is not None:
        env[KILL_AT_ENV] = str(kill_at)
    return env


def _listing_name(relative: str) -> str:
    return "L" + relative.encode().hex()


def arm(root: Path, state: Path) -> None:
    """A fresh durable image of ``root`` as it is now (everything in it durable)."""
    shutil.rmtree(state, ignore_errors=True)
    for part in ("links", "content", "dirs", "tmp"):
        (state / part).mkdir(parents=True)
    root.mkdir(parents=True, exist_ok=True)
    for directory, subdirs, files in os.walk(root):
        relative = os.path.relpath(directory, root)
        lines = [f"d 0 {name}\n" for name in subdirs]
        for name in files:
            path = Path(directory) / name
            if path.is_symlink() or not path.is_file():
                continue
            inode = path.stat().st_ino
            link = state / "links" / str(inode)
            if not link.exists():
                os.link(path, link)
                shutil.copyfile(path, state / "content" / str(inode))
            lines.append(f"f {inode} {name}\n")
        listing = state / "dirs" / _listing_name("" if relative == "." else relative)
        listing.write_text("".join(lines))


def captures(state: Path) -> str:
    """One letter per sync the shim saw: ``f`` a file, ``d`` a directory."""
    try:
        return (state / "captures").read_text()
    except FileNotFoundError:
        return ""


@dataclass
class Cut:
    """What a cut threw away: names the live directory had, bytes beyond the synced contents."""

    dropped_names: int = 0  # creates (and rename targets) never made durable
    dropped_bytes: int = 0  # data never synced
    restored_names: int = 0  # unlinks (and rename sources) never made durable


def cut(root: Path, state: Path) -> Cut:
    """Replace ``root`` by its durable image (the process using it must be dead)."""
    rebuilt = root.with_name(root.name + ".cut")
    shutil.rmtree(rebuilt, ignore_errors=True)
    restored: dict[int, Path] = {}

    def build(relative: str, target: Path) -> None:
        target.mkdir()
        listing = state / "dirs" / _listing_name(relative)
        if not listing.exists():
            return  # created, never synced: empty
        for line in listing.read_text().splitlines():
            kind, inode_text, name = line.split(" ", 2)
            if kind == "d":
                build(f"{relative}/{name}" if relative else name, target / name)
                continue
            inode = int(inode_text)
            if inode in restored:
                os.link(restored[inode], target / name)
                continue
            content = state / "content" / str(inode)
            if content.exists():
                shutil.copyfile(content, target / name)
            else:
                (target / name).touch()  # its name was synced, its data never
            restored[inode] = target / name

    build("", rebuilt)
    summary = Cut()
    for directory, _, files in os.walk(root):
        for name in files:
            live = Path(directory) / name
            kept = rebuilt / live.relative_to(root)
            if not kept.exists():
                summary.dropped_names += 1
                summary.dropped_bytes += live.stat().st_size
            else:
                summary.dropped_bytes += max(0, live.stat().st_size - kept.stat().st_size)
    for directory, _, files in os.walk(rebuilt):
        for name in files:
            if not (root / (Path(directory) / name).relative_to(rebuilt)).exists():
                summary.restored_names += 1
    shutil.rmtree(root)
    rebuilt.rename(root)
    return summary
