"""The node's configuration: one dataclass, filled from flags > RUMOR_* env > TOML > defaults.

Every field carries its default and a one-line reason in its ``help``; the
`rumor node` flags are generated from these fields, so the CLI, environment
variables and the TOML file can never disagree on names or types. A field
``min_expiration_ttl`` is the flag ``--min-expiration-ttl``, the environment
variable ``RUMOR_MIN_EXPIRATION_TTL`` and the TOML key ``min_expiration_ttl``
(or ``min-expiration-ttl``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rumor.node.replication.engine.protocol_config import ProtocolConfig

_LAN = ProtocolConfig.lan()  # the protocol defaults; --protocol-profile picks another base


class ConfigError(ValueError):
    """A setting that cannot be used; the message names it."""


def _setting(default: Any, help: str, choices: tuple[str, ...] = ()) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class Config:
    data_dir: str = _setting(
        ".rumor/node", "Directory of this node's RocksDB; it also holds the node id."
    )
    listen: str = _setting(
        "127.0.0.1:7401",
        "gRPC listen address HOST:PORT; port 0 picks a free one. Loopback by default.",
    )
    http: str = _setting(
        "",
        "HOST:PORT of the Cloudflare-compatible HTTP API with /metrics and /healthz"
        " (port 0 picks a free one); empty: no HTTP listener.",
    )
    api_token: tuple[str, ...] = _setting(
        (),
        "A bearer token clients must send (repeatable; RUMOR_API_TOKEN takes a comma-"
        "separated list). None at all: the APIs are open, and the log says so.",
    )
    tls_cert: str = _setting("", "PEM certificate: every gRPC listener speaks TLS only.")
    tls_key: str = _setting("", "PEM private key of --tls-cert.")
    tls_ca: str = _setting(
        "", "PEM CA: peers and clients must present a certificate it signed (mutual TLS)."
    )
    cluster_secret_file: str = _setting(
        "",
        "File holding the cluster secret that Replication, Admin and Faults calls must"
        " carry (or RUMOR_CLUSTER_SECRET; never on the command line).",
    )
    api_token_file: str = _setting(
        "", "A file of tokens, one per line (# comments allowed), added to --api-token."
    )
    insecure: bool = _setting(
        False,
        "Serve a non-loopback gRPC listener without a cluster secret, or a non-loopback HTTP"
        " listener without an API token (refused otherwise). Never in production.",
    )
    checkpoint_dir: str = _setting(
        "",
        "The only directory Admin.Checkpoint may write under (a new subdirectory per"
        " checkpoint); empty: checkpoints are refused.",
    )
    no_snapshot_bootstrap: bool = _setting(
        False,
        "Never bootstrap by snapshot: a fresh node (never served, holding nothing) pulls"
        " every record by anti-entropy instead of fetching a peer's consistent copy.",
    )
    snapshot_min_records: int = _setting(
        50_000,
        "Serve a snapshot to a fresh node only when holding at least this many records"
        " and tombstones (fewer: it catches up by anti-entropy).",
    )
    experiments_dir: str = _setting(
        "",
        "The only directory whose experiment reports (report.md, plots) the web console at"
        " /ui/ shows; paths outside it are refused. Empty: no reports.",
    )
    http_allowed_hosts: tuple[str, ...] = _setting(
        (),
        "Host header names the HTTP API answers besides loopback, IP literals and the"
        " listen/advertise hosts (against DNS rebinding); * allows any.",
    )
    max_watchers: int = _setting(
        512, "Most Watch streams the node serves at once (RESOURCE_EXHAUSTED beyond)."
    )
    max_watchers_per_connection: int = _setting(
        64, "Most Watch streams one client connection may hold at once."
    )
    max_watch_buffer: int = _setting(
        1024,
        "Most changes queued for one watcher; a client may ask for fewer, never more.",
    )
    max_read_bytes_in_flight: int = _setting(
        256 * 1024 * 1024,
        "Bytes of values read for clients and not yet sent, node-wide; a read waits for"
        " room (one value is always admitted when nothing else is in flight).",
    )
    read_admission_timeout_ms: int = _setting(
        5000,
        "How long a read waits for room under max_read_bytes_in_flight before it is"
        " answered RESOURCE_EXHAUSTED (HTTP 503).",
    )
    max_client_calls: int = _setting(
        512,
        "Most KV calls (gRPC) and HTTP requests served at once; Replication, Admin and"
        " health calls have their own budget, so peers are never starved by clients.",
    )
    name: str = _setting("", "A human name for this node in logs and status (ids are random).")
    advertise: str = _setting(
        "", "Address peers use to reach this node (default: the bound listen address)."
    )
    seeds: str = _setting(
        "", "Comma-separated HOST:PORT of nodes to join through; empty: start a new cluster."
    )
    gossip_interval_ms: int = _setting(
        _LAN.gossip_interval_ms,
        "How often each peer's push queue is flushed; lower spreads faster, costs more calls.",
    )
    fanout: int = _setting(
        _LAN.fanout, "How many random live peers receive each batch of new records."
    )
    anti_entropy_interval_ms: int = _setting(
        _LAN.anti_entropy_interval_ms,
        "How often a node compares watermarks with a random peer and repairs.",
    )
    probe_interval_ms: int = _setting(
        _LAN.probe_interval_ms, "SWIM: how often one member is probed."
    )
    probe_timeout_ms: int = _setting(
        _LAN.probe_timeout_ms, "SWIM: how long a probe waits before indirect probes."
    )
    indirect_probes: int = _setting(
        _LAN.indirect_probes, "SWIM: how many members probe a silent one for us."
    )
    suspicion_timeout_ms: int = _setting(
        _LAN.suspicion_timeout_ms,
        "SWIM: how long a suspect has to refute before it is declared dead.",
    )
    member_timeout_ms: int = _setting(
        _LAN.member_timeout_ms,
        "Remove a member after this much dead time (0: never; removal is for ever).",
    )
    max_clock_offset_ms: int = _setting(
        _LAN.max_clock_offset_ms,
        "Largest tolerated clock offset; records over twice this ahead are deferred.",
    )
    clock_offset_policy: str = _setting(
        "fence",
        "fence: refuse client writes while this node's clock is off from the majority;"
        " warn: only log (for experiments on skew).",
        choices=("fence", "warn"),
    )
    join_timeout_ms: int = _setting(
        _LAN.join_timeout_ms,
        "Serve alone after this long if no seed answered (seeds are still retried for ever).",
    )
    seed_contact_interval_ms: int = _setting(
        _LAN.seed_contact_interval_ms,
        "How often a node joins through a random seed, so groups formed apart merge.",
    )
    lazy_fanout: int = _setting(
        _LAN.lazy_fanout,
        "Further peers told only the ids of new records; they pull what push missed.",
    )
    protocol_profile: str = _setting(
        "lan",
        "Base of every protocol timer not set here: lan (a data centre), local (one"
        " machine, milliseconds: tests) or wan (links across regions).",
        choices=("lan", "local", "wan"),
    )
    audit_interval_ms: int = _setting(
        _LAN.audit_interval_ms,
        "How often buckets are compared with a peer (a backstop; repairs must be 0).",
    )
    gc_grace_ms: int = _setting(
        _LAN.gc_grace_ms,
        "Minimum wait between a tombstone becoming stable everywhere and its purge.",
    )
    min_replicas_timeout_ms: int = _setting(
        _LAN.min_replicas_timeout_ms, "How long a put with min_replicas waits for confirmations."
    )
    enable_fault_injection: bool = _setting(
        False, "Serve the Faults service (block, drop, delay, clock offset). Tests only."
    )
    durability: str = _setting(
        "fsync",
        "fsync: acknowledge after the WAL is synced (group commit), survives power loss;"
        " wal: after the WAL write, survives a process crash only, faster.",
        choices=("fsync", "wal"),
    )
    wal_sync: str = _setting(
        "thread",
        "Where group commit runs its WAL fsync: thread (a worker thread, the loop keeps"
        " serving) or loop (on the event loop, no thread hand-off).",
        choices=("thread", "loop"),
    )
    event_loop: str = _setting(
        "auto",
        "auto: uvloop when the package is installed (0-5% more requests/s measured),"
        " else asyncio's own loop; asyncio or uvloop to choose (uvloop missing: no start).",
        choices=("auto", "asyncio", "uvloop"),
    )
    min_expiration_ttl: int = _setting(
        60, "Smallest expiration_ttl (and distance of an absolute expiration) a client may ask."
    )
    sweep_interval_ms: int = _setting(
        _LAN.sweep_interval_ms,
        "How often the sweeper purges a slice of tombstones and expired keys.",
    )
    shutdown_grace_ms: int = _setting(5000, "How long a stopping node lets in-flight RPCs finish.")
    log_level: str = _setting(
        "info", "debug, info, warning or error.", choices=("debug", "info", "warning", "error")
    )
    log_format: str = _setting(
        "auto",
        "json, console, or auto (console on a terminal, JSON otherwise).",
        choices=("auto", "json", "console"),
    )

    # The settings given explicitly (flag, environment or TOML), for ``protocol``.
    explicit: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    @classmethod
    def settings(cls) -> list[dataclasses.Field[Any]]:
        return [f for f in dataclasses.fields(cls) if f.name != "explicit"]

    @classmethod
    def load(
        cls,
        flags: Mapping[str, Any],
        env: Mapping[str, str] | None = None,
        config_file: str | os.PathLike[str] | None = None,
    ) -> Config:
        """Merge the sources, highest first: ``flags`` (None = not given), env, TOML, defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if config_file is not None:
            values.update(_read_toml(Path(config_file)))
        for setting in cls.settings():
            env_name = "RUMOR_" + setting.name.upper()
            if env_name in env:
                values[setting.name] = env[env_name]
            flag = flags.get(setting.name)
            if flag is not None and flag != ():  # a repeatable flag not given is ()
                values[setting.name] = flag
        converted = {name: _convert(name, value) for name, value in values.items()}
        config = cls(**converted, explicit=frozenset(converted))
        config.check()
        return config

    def check(self) -> None:
        """Every problem with the settings, one line each, in one ConfigError."""
        problems: list[str] = []
        for setting in self.settings():
            choices = setting.metadata["choices"]
            value = getattr(self, setting.name)
            if choices and value not in choices:
                problems.append(
                    f"{setting.name} must be one of {', '.join(choices)}; got {value!r}"
                )
        for name in ("listen", "http", "advertise"):
            address = getattr(self, name)
            if name != "listen" and not address:
                continue
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or int(port) > 65535:
                problems.append(f"{name} must be HOST:PORT; got {address!r}")
        for name in (
            "max_watchers",
            "max_watchers_per_connection",
            "max_watch_buffer",
            "max_read_bytes_in_flight",
            "max_client_calls",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        if self.read_admission_timeout_ms < 0:
            problems.append("read_admission_timeout_ms must be at least 0")
        if self.min_expiration_ttl < 1:
            problems.append("min_expiration_ttl must be at least 1")
        for name in (
            "sweep_interval_ms",
            "gossip_interval_ms",
            "anti_entropy_interval_ms",
            "probe_interval_ms",
            "probe_timeout_ms",
            "fanout",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        for seed in self.seed_list():
            seed_host, _, seed_port = seed.rpartition(":")
            if not seed_host or not seed_port.isdigit():
                problems.append(f"seeds must be HOST:PORT,...; got {seed!r}")
        if problems:
            raise ConfigError("\n".join(problems))

    def protocol(self) -> ProtocolConfig:
        """The protocol's knobs: the profile's, with every setting given explicitly."""
        base = ProtocolConfig.profile(self.protocol_profile)
        given = {name: getattr(self, name) for name in _PROTOCOL_SETTINGS if name in self.explicit}
        given["snapshot_bootstrap"] = not self.no_snapshot_bootstrap  # the node can fetch one
        if "clock_offset_policy" in self.explicit or self.clock_offset_policy != "fence":
            given["fence_clock"] = self.clock_offset_policy == "fence"
        return base.replace(**given)

    def seed_list(self) -> tuple[str, ...]:
        return tuple(seed.strip() for seed in self.seeds.split(",") if seed.strip())


_TYPES = {setting.name: setting.type for setting in Config.settings()}
# Settings that are protocol knobs, under the same name in ProtocolConfig.
_PROTOCOL_SETTINGS = tuple(
    name for name in _TYPES if name in {f.name for f in dataclasses.fields(ProtocolConfig)}
)


def _convert(name: str, value: Any) -> Any:
    kind = _TYPES[name]
    if kind in ("tuple[str, ...]", tuple[str, ...]):
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(str(item).strip() for item in items if str(item).strip())
    if kind in ("int", int):
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be an integer; got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name} must be an integer; got {value!r}") from exc
    if kind in ("bool", bool):
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false; got {value!r}")
    return str(value)


def _read_toml(path: Path) -> dict[str, Any]:
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
        if name not in _TYPES:
            raise ConfigError(f"config file {path}: unknown setting {key!r}")
        values[name] = value
    return values
