"""What `rumor worker dev` reads from a wrangler project: ``main``, ``compatibility_date``
and ``kv_namespaces = [{binding, id}]``, from wrangler.toml, wrangler.json or
wrangler.jsonc (the first that exists, in that order, as wrangler looks).
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_NAMES = ("wrangler.toml", "wrangler.json", "wrangler.jsonc")


class ProjectError(ValueError):
    """The project's wrangler config is missing or unusable; the message says why."""


@dataclass(frozen=True, slots=True)
class DeclaredKV:
    binding: str
    id: str | None  # the Cloudflare namespace id, if the config gives one


@dataclass(frozen=True, slots=True)
class Project:
    config_path: Path
    main: Path
    compatibility_date: str | None
    kv_namespaces: list[DeclaredKV]


def _strip_jsonc(text: str) -> str:
    """JSON with comments and trailing commas (wrangler.jsonc) as plain JSON."""
    pattern = re.compile(r'"(?:\\.|[^"\\])*"|//[^\n]*|/\*.*?\*/', re.S)
    no_comments = pattern.sub(lambda m: m.group(0) if m.group(0).startswith('"') else "", text)
    return re.sub(r",(\s*[}\]])", r"\1", no_comments)


def _load(path: Path) -> dict[str, Any]:
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        else:
            data = json.loads(_strip_jsonc(text))
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ProjectError(f"{path.name} cannot be parsed: {exc}") from None
    if not isinstance(data, dict):
        raise ProjectError(f"{path.name} must hold a table of settings.")
    return data


def find_config(directory: Path) -> Path:
    for name in CONFIG_NAMES:
        if (directory / name).is_file():
            return directory / name
    raise ProjectError(
        f"No SCRIPT given and no {', '.join(CONFIG_NAMES)} in {directory}: "
        "give the Worker's file and its bindings (--kv BINDING=NAMESPACE)."
    )


def load(directory: Path) -> Project:
    path = find_config(directory)
    data = _load(path)
    main = data.get("main")
    if not isinstance(main, str) or not main:
        raise ProjectError(f'{path.name} has no "main": the Worker\'s entry file.')
    declared = data.get("kv_namespaces", [])
    if not isinstance(declared, list):
        raise ProjectError(f'{path.name}: "kv_namespaces" must be a list of {{binding, id}}.')
    kv: list[DeclaredKV] = []
    for entry in declared:
        if not isinstance(entry, dict) or not isinstance(entry.get("binding"), str):
            raise ProjectError(f'{path.name}: every "kv_namespaces" entry needs a "binding".')
        namespace_id = entry.get("id")
        kv.append(
            DeclaredKV(entry["binding"], namespace_id if isinstance(namespace_id, str) else None)
        )
    date = data.get("compatibility_date")
    return Project(
        config_path=path,
        main=(path.parent / main).resolve(),
        compatibility_date=date if isinstance(date, str) else None,
        kv_namespaces=kv,
    )
