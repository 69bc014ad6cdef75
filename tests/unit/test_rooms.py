"""The folders show the architecture: every package names its rooms, and the README shows them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP_FOLDERS = ("node", "experiments", "client", "bench")


def packages() -> list[Path]:
    found = []
    for top in TOP_FOLDERS:
        for init in sorted((ROOT / top).rglob("__init__.py")):
            found.append(init.parent)
    return found


def rooms_of(package: Path) -> list[str]:
    return sorted(p.name for p in package.iterdir() if (p / "__init__.py").is_file())


@pytest.mark.parametrize("package", packages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_package_docstring_names_its_rooms(package: Path) -> None:
    docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    assert docstring, f"{package.relative_to(ROOT)}/__init__.py has no docstring"
    missing = [room for room in rooms_of(package) if f"{room}" not in docstring]
    assert not missing, f"{package.relative_to(ROOT)}/__init__.py does not name {missing}"


def test_the_readme_layout_shows_every_room() -> None:
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    for top in ("node", "experiments"):
        for package in packages():
            relative = package.relative_to(ROOT)
            if relative.parts[0] != top or len(relative.parts) < 2:
                continue
            if rooms_of(package):
                continue  # a folder of rooms is shown by its rooms
            assert f"`{relative}/`" in layout, f"README's layout does not show {relative}/"
