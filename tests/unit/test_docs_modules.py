"""docs/ALGORITHM.md follows the code.

- every repository path it names (``node/...``, ``tests/...``, ``docs/...``)
  exists, and every dotted ``rumor.`` name it gives imports;
- every engine component — a class of the engine room built from
  ``Services`` — is named in it, and the Engine's own list of components
  holds only such classes.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import random
import re
from pathlib import Path

from rumor.node.core.membership import Member, State
from rumor.node.replication.engine import engine as engine_module
from rumor.node.replication.engine.components import Services
from rumor.node.replication.engine.membership import Membership
from rumor.node.replication.engine.messages import Now
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.replica.replica import Replica
from rumor.node.storage import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
ALGORITHM = (ROOT / "docs" / "ALGORITHM.md").read_text()
PATH = re.compile(r"`((?:node|client|experiments|tests|docs|bench|proto|deploy)/[\w./-]*)`")
DOTTED = re.compile(r"`(rumor\.[\w.]+)`")
ENGINE_ROOM = "rumor.node.replication.engine"


def test_every_path_named_exists() -> None:
    named = set(PATH.findall(ALGORITHM))
    assert len(named) >= 10, sorted(named)
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"docs/ALGORITHM.md names paths that do not exist: {missing}"


def test_every_dotted_name_imports() -> None:
    named = set(DOTTED.findall(ALGORITHM))
    assert named
    for name in sorted(named):
        assert _resolves(name), f"docs/ALGORITHM.md names {name}, which does not import"


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def component_classes() -> set[type]:
    """The classes of the engine room whose constructor takes ``Services`` first."""
    package = importlib.import_module(ENGINE_ROOM)
    found: set[type] = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{ENGINE_ROOM}.{info.name}")
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != module.__name__:
                continue
            parameters = list(inspect.signature(cls.__init__).parameters.values())
            if len(parameters) > 1 and parameters[1].annotation in ("Services", Services):
                found.add(cls)
    return found


def test_every_engine_component_is_named() -> None:
    classes = component_classes()
    assert len(classes) >= 8, sorted(cls.__name__ for cls in classes)
    unnamed = sorted(cls.__name__ for cls in classes if f"`{cls.__name__}`" not in ALGORITHM)
    assert not unnamed, f"engine components docs/ALGORITHM.md does not name: {unnamed}"


def test_the_engine_lists_only_components_built_from_services() -> None:
    store = MemoryStore()
    replica = Replica(store, new_node_id=1, wall_ms=1_000)
    membership = Membership(store, Member(1, "a", 0, State.ALIVE, 1, ""))
    engine = engine_module.Engine(
        replica, membership, ProtocolConfig.local(), rng=random.Random(1), now=Now(0, 1_000)
    )
    listed = {type(component) for component in engine.components}
    assert listed
    assert listed <= component_classes()
    assert all(isinstance(component.due_ms(), int) for component in engine.components)
