"""The project's build: the wheel holds every subpackage, stubs match the protos, layers hold."""

from __future__ import annotations

import filecmp
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SUBPACKAGES = [
    "rumor/v1",
    "rumor/node",
    "rumor/node/core",
    "rumor/node/storage",
    "rumor/node/replication",
    "rumor/node/replication/replica",
    "rumor/node/replication/engine",
    "rumor/node/server",
    "rumor/node/server/grpc",
    "rumor/node/server/http",
    "rumor/node/server/console",
    "rumor/node/server/snapshot",
    "rumor/node/server/driver",
    "rumor/node/server/workers",
    "rumor/client",
    "rumor/experiments",
    "rumor/experiments/lab",
    "rumor/experiments/properties",
    "rumor/experiments/sim",
    "rumor/bench",
]


def test_wheel_holds_every_subpackage(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("rumorkv-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in SUBPACKAGES:
        assert f"{package}/__init__.py" in names, f"{package} missing from {wheel.name}"
    assert "rumor/v1/kv_pb2.py" in names
    assert "rumor/v1/kv.proto" in names
    assert not any(name.startswith(("node/", "client/", "proto/", "tests/")) for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[rumor.cli]" in text
    assert "rumor = rumor.client.launcher:main" in text


def test_generated_stubs_match_the_protos(tmp_path: Path) -> None:
    protos = sorted((ROOT / "proto").rglob("*.proto"))
    assert protos
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            str(ROOT / "proto"),
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            *map(str, protos),
        ],
        check=True,
    )
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*_pb2*.py*"))
    committed = sorted(p.relative_to(ROOT / "proto") for p in (ROOT / "proto").rglob("*_pb2*.py*"))
    assert generated == committed
    for relative in generated:
        assert filecmp.cmp(tmp_path / relative, ROOT / "proto" / relative, shallow=False), (
            f"proto/{relative} is stale: run `make proto` and commit"
        )


def test_import_contracts_hold() -> None:
    result = subprocess.run([str(BIN / "lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and "0 broken" in result.stdout


def test_rumor_command_assembles_node_from_entry_points() -> None:
    result = subprocess.run([str(BIN / "rumor"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "node" in result.stdout


@pytest.mark.parametrize("flag", ["--data-dir", "--listen", "--durability", "--min-expiration-ttl"])
def test_node_help_lists_settings(flag: str) -> None:
    result = subprocess.run([str(BIN / "rumor"), "node", "--help"], capture_output=True, text=True)
    assert flag in result.stdout


# The name of a document this repository never had; spelled backwards so that this
# file does not mention it either.
ABSENT_DOCUMENT = "NGISED"[::-1]


def test_no_file_refers_to_a_document_outside_the_repository() -> None:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    offenders = []
    for name in listed.stdout.decode().split("\0"):
        if not name or name.endswith(("-lock.json", ".lock")):
            continue
        path = ROOT / name
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" not in data and ABSENT_DOCUMENT.encode() in data:
            offenders.append(name)
    assert offenders == [], f"these files refer to {ABSENT_DOCUMENT}: {offenders}"
