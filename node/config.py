"""The node's configuration: one dataclass, filled from flags > RUMOR_* env > TOML > defaults.

A setting ``min_expiration_ttl`` is the flag ``--min-expiration-ttl``, the
environment variable ``RUMOR_MIN_EXPIRATION_TTL`` and the TOML key
``min_expiration_ttl`` (or ``min-expiration-ttl``); `rumor node`'s flags are
generated from ``Config.settings()``, so the CLI, environment variables and
the TOML file can never disagree on names or types.

Two kinds of setting, each declared once:

- the node's own (addresses, security, limits, logs): the fields of ``Config``,
  each with its default and a one-line reason in its ``help``;
- the protocol knobs ``ProtocolConfig`` marks as node settings (gossip and
  probe intervals, fanout, timeouts, ...): name, default, reason and bounds
  come from ``ProtocolConfig``'s fields and are not restated here. Those given
  explicitly are laid over the profile ``--protocol-profile`` picks
  (``protocol()``); the others follow the profile.

``Config.check`` reports every problem at once, the protocol knobs' through
``ProtocolConfig.problems``. What one setting is, and how a value given as
text or TOML becomes its kind, is ``rumor.node.settings``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.server.upload_budget import UploadBudget
from rumor.node.settings import ConfigError, Setting, convert, read_toml


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
    http_tls_cert: str = _setting(
        "", "PEM certificate (chain): the HTTP listener (REST API, binding, console) speaks HTTPS."
    )
    http_tls_key: str = _setting("", "PEM private key of --http-tls-cert.")
    http_tls_ca: str = _setting(
        "", "PEM CA: HTTPS clients must present a certificate it signed (mutual TLS)."
    )
    http_behind_proxy: bool = _setting(
        False,
        "A TLS-terminating proxy fronts the HTTP listener: a non-loopback HTTP listener"
        " without --http-tls-cert may serve plain HTTP (refused otherwise).",
    )
    cluster_secret_file: str = _setting(
        "",
        "File holding the cluster secret that Replication, Admin and Faults calls must"
        " carry (or RUMOR_CLUSTER_SECRET; never on the command line).",
    )
    api_token_file: str = _setting(
        "",
        "A file of tokens, one a line: TOKEN [SCOPES [NAMESPACE ...]], SCOPES from read,"
        " write, admin (a bare token is admin); sha256:HEX for a token kept out of the file.",
    )
    audit_log: str = _setting(
        "",
        "File the audit trail is appended to (namespace changes, Admin calls, refusals,"
        " by token id); empty: the audit events go to the node's log only.",
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
    backup_dir: str = _setting(
        "",
        "Where the node writes its own scheduled backups (the format of `rumor admin backup"
        " DEST`, incremental); empty: no scheduled backups.",
    )
    backup_interval: int = _setting(
        3600, "Seconds between scheduled backups into --backup-dir (an hour: cheap, incremental)."
    )
    backup_keep: int = _setting(
        24, "Scheduled backups kept in --backup-dir; older ones and their unshared files go."
    )
    no_snapshot_bootstrap: bool = _setting(
        False,
        "Never bootstrap by snapshot: a fresh node (never served, holding nothing) pulls"
        " every record by anti-entropy instead of fetching a peer's consistent copy.",
    )
    rejoin_as_new: bool = _setting(
        False,
        "When the cluster refuses this node as removed (it was retired while down, or by"
        " remove-node), delete its data directory and join again as a new node that takes"
        " its data from the cluster, instead of exiting with status 78. What only this"
        " node held is lost.",
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
    max_upload_bytes_in_flight: int = _setting(
        256 * 1024 * 1024,
        "Bytes of request bodies and PutStreams being received, node-wide; an upload waits"
        " for room (one alone on the node is always admitted).",
    )
    max_upload_bytes_per_connection: int = _setting(
        128 * 1024 * 1024,
        "Bytes of uploads being received on one client connection (gRPC carries many"
        " on one); one alone on its connection is always admitted.",
    )
    upload_admission_timeout_ms: int = _setting(
        5000,
        "How long an upload waits for room under the upload budgets before it is answered"
        " RESOURCE_EXHAUSTED (HTTP 503 with Retry-After).",
    )
    upload_idle_timeout_ms: int = _setting(
        30_000,
        "An upload that sends nothing for this long is refused DEADLINE_EXCEEDED (HTTP 408)"
        " and its bytes let go.",
    )
    upload_timeout_ms: int = _setting(
        300_000,
        "An upload not received whole this long after it started is refused DEADLINE_EXCEEDED"
        " (HTTP 408): 128 MiB at 450 KB/s.",
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
    clock_offset_policy: str = _setting(
        "fence",
        "fence: refuse client writes while this node's clock is off from the majority;"
        " warn: only log (for experiments on skew).",
        choices=("fence", "warn"),
    )
    protocol_profile: str = _setting(
        "lan",
        "Base of every protocol timer not set here: lan (a data centre), local (one"
        " machine, milliseconds: tests) or wan (links across regions).",
        choices=("lan", "local", "wan"),
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
    disk_reserve_mb: int = _setting(
        64,
        "MiB preallocated in the data directory and released when the disk fills, so a"
        " full node can stop cleanly and start again read-only; writes resume once twice"
        " this much is free. 0: no reserve.",
    )
    wal_sync: str = _setting(
        "thread",
        "Where group commit runs its WAL fsync: thread (a worker thread, the loop keeps"
        " serving) or loop (on the event loop, no thread hand-off).",
        choices=("thread", "loop"),
    )
    workers: str = _setting(
        "0",
        "Worker processes that share the client listeners (gRPC and HTTP) and do the"
        " per-request work, beside the owner process that keeps the engine and RocksDB;"
        " auto: one per core this process may use (none on one core); 0: one process.",
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
    shutdown_grace_ms: int = _setting(5000, "How long a stopping node lets in-flight RPCs finish.")
    log_level: str = _setting(
        "info", "debug, info, warning or error.", choices=("debug", "info", "warning", "error")
    )
    log_format: str = _setting(
        "auto",
        "json, console, or auto (console on a terminal, JSON otherwise).",
        choices=("auto", "json", "console"),
    )

    # The protocol knobs given explicitly (flag, environment or TOML), laid over the
    # profile's by ``protocol``.
    protocol_knobs: tuple[tuple[str, int], ...] = ()

    @classmethod
    def settings(cls) -> list[Setting]:
        """Every setting: the node's own, then the protocol knobs, in declaration order."""
        own = [
            Setting(
                f.name, _KINDS[str(f.type)], f.default, f.metadata["help"], f.metadata["choices"]
            )
            for f in dataclasses.fields(cls)
            if f.name != "protocol_knobs"
        ]
        lan = ProtocolConfig.lan()
        knobs = [
            Setting(
                knob.name,
                _KINDS[str(knob.type)],
                getattr(lan, knob.name),
                knob.metadata["reason"],
                protocol=True,
            )
            for knob in ProtocolConfig.node_settings()
        ]
        return own + knobs

    def worker_count(self) -> int:
        """How many worker processes ``workers`` asks for."""
        if self.workers == "auto":
            cores = usable_cores()
            return cores if cores >= 2 else 0
        return int(self.workers)

    def to_json(self) -> str:
        """The resolved settings, for a worker process to run on the very same."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Config:
        values = json.loads(text)
        for f in dataclasses.fields(cls):
            if isinstance(values.get(f.name), list):
                values[f.name] = tuple(
                    tuple(item) if isinstance(item, list) else item for item in values[f.name]
                )
        return cls(**values)

    def upload_budget(self) -> UploadBudget:
        """The upload budget and clocks these settings ask for (one per serving process)."""
        return UploadBudget(
            self.max_upload_bytes_in_flight,
            self.max_upload_bytes_per_connection,
            admission_timeout_s=self.upload_admission_timeout_ms / 1000,
            idle_timeout_s=self.upload_idle_timeout_ms / 1000,
            total_timeout_s=self.upload_timeout_ms / 1000,
        )

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
            values.update(read_toml(Path(config_file), _SETTINGS))
        for setting in _SETTINGS.values():
            env_name = "RUMOR_" + setting.name.upper()
            if env_name in env:
                values[setting.name] = env[env_name]
            flag = flags.get(setting.name)
            if flag is not None and flag != ():  # a repeatable flag not given is ()
                values[setting.name] = flag
        own: dict[str, Any] = {}
        knobs: list[tuple[str, int]] = []
        for name, value in values.items():
            converted = convert(_SETTINGS[name], value)
            if _SETTINGS[name].protocol:
                knobs.append((name, converted))
            else:
                own[name] = converted
        config = cls(**own, protocol_knobs=tuple(knobs))
        config.check()
        return config

    def check(self) -> None:
        """Every problem with the settings, one line each, in one ConfigError."""
        problems: list[str] = []
        for setting in self.settings():
            if setting.choices and getattr(self, setting.name) not in setting.choices:
                problems.append(
                    f"{setting.name} must be one of {', '.join(setting.choices)};"
                    f" got {getattr(self, setting.name)!r}"
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
            "max_upload_bytes_in_flight",
            "max_upload_bytes_per_connection",
            "upload_idle_timeout_ms",
            "upload_timeout_ms",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        if self.workers != "auto" and not (self.workers.isdigit() and int(self.workers) <= 256):
            problems.append(f"workers must be auto or a number from 0 to 256; got {self.workers!r}")
        for name in ("read_admission_timeout_ms", "upload_admission_timeout_ms"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be at least 0")
        if self.disk_reserve_mb < 0:
            problems.append("disk_reserve_mb must be at least 0")
        if self.min_expiration_ttl < 1:
            problems.append("min_expiration_ttl must be at least 1")
        if self.backup_interval < 1:
            problems.append("backup_interval must be at least 1 (seconds)")
        if self.backup_keep < 1:
            problems.append("backup_keep must be at least 1")
        if self.protocol_profile in ("lan", "local", "wan"):
            problems.extend(self.protocol().problems())
        for seed in self.seed_list():
            seed_host, _, seed_port = seed.rpartition(":")
            if not seed_host or not seed_port.isdigit():
                problems.append(f"seeds must be HOST:PORT,...; got {seed!r}")
        if problems:
            raise ConfigError("\n".join(problems))

    def protocol(self) -> ProtocolConfig:
        """The protocol's knobs: the profile's, with every knob given explicitly."""
        return ProtocolConfig.profile(self.protocol_profile).replace(
            **dict(self.protocol_knobs),
            snapshot_bootstrap=not self.no_snapshot_bootstrap,  # the node can fetch one
            fence_clock=self.clock_offset_policy == "fence",
        )

    def seed_list(self) -> tuple[str, ...]:
        return tuple(seed.strip() for seed in self.seeds.split(",") if seed.strip())


# A field's type as written (annotations are strings here) -> what its values are.
_KINDS: dict[str, Any] = {"str": str, "int": int, "bool": bool, "tuple[str, ...]": tuple}
_SETTINGS = {setting.name: setting for setting in Config.settings()}


def usable_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup v2 quota."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, int(quota) // int(period)))
