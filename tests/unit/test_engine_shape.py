"""The engine's components see services, never the Engine or each other.

Read from the source, without running anything: no module of the engine room
but ``engine`` itself and ``build`` (which constructs it) imports the Engine,
and no component module imports a sibling component (each decision that starts
another's work is a hook the engine routes).
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

ROOM = "rumor.node.replication.engine"
COMPONENT_MODULES = {
    "gossip",
    "anti_entropy",
    "probing",
    "joining",
    "audit_rounds",
    "sweep_rounds",
    "snapshot_join",
    "envelopes",
}


def imports_of(module: str) -> set[str]:
    """The ``rumor.`` modules ``module`` imports (at run time or for type checking)."""
    path = Path(importlib.import_module(f"{ROOM}.{module}").__file__ or "")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("rumor.")}


def room_modules() -> set[str]:
    package = importlib.import_module(ROOM)
    return {info.name for info in pkgutil.iter_modules(package.__path__)}


def test_the_component_modules_are_in_the_room() -> None:
    assert room_modules() >= COMPONENT_MODULES


def test_only_the_engine_module_imports_the_engine() -> None:
    importers = sorted(
        module
        for module in room_modules() - {"engine", "build"}
        if f"{ROOM}.engine" in imports_of(module)
    )
    assert not importers, f"these see the whole Engine: {importers}"


def test_no_component_imports_a_sibling_component() -> None:
    for module in sorted(COMPONENT_MODULES):
        siblings = {f"{ROOM}.{other}" for other in COMPONENT_MODULES - {module}}
        assert not imports_of(module) & siblings, f"{module} imports a sibling component"
