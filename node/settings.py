"""One setting of `rumor node`, and how a value given for it becomes the setting's kind.

A ``Setting`` is a flag, a RUMOR_* variable and a TOML key at once (``Config``
declares them). Flags and environment variables give text, a TOML file gives
TOML values: ``convert`` turns either into the setting's kind (str, int, bool
or a tuple of strings, from a comma-separated list), and ``read_toml`` reads a
config file, refusing a key that names no setting. A value that cannot be used
is a ``ConfigError`` naming the setting.
"""

from __future__ import annotations

import tomllib
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting that cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting of `rumor node`: a flag, a RUMOR_* variable and a TOML key."""

    name: str
    kind: Any  # str, int, bool or tuple[str, ...]
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    protocol: bool = False  # a ProtocolConfig knob: unless given, the profile's value


def convert(setting: Setting, value: Any) -> Any:
    """``value`` (text, or a TOML value) as the setting's kind."""
    name, kind = setting.name, setting.kind
    if kind is tuple:
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(str(item).strip() for item in items if str(item).strip())
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be an integer; got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name} must be an integer; got {value!r}") from exc
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false; got {value!r}")
    return str(value)


def read_toml(path: Path, known: Container[str]) -> dict[str, Any]:
    """The settings a TOML file gives, by name (``min-expiration-ttl`` is
    ``min_expiration_ttl``); a key not ``known`` is refused."""
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    values = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ConfigError(f"config file {path}: unknown setting {key!r}")
        values[name] = value
    return values
