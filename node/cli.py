"""`rumor node`: the node's command, contributed to `rumor` through the rumor.cli entry point.

Its options are generated from ``Config.settings()`` (the node's own settings
and ProtocolConfig's node knobs), so every setting has one flag, one RUMOR_*
variable and one TOML key.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import structlog

from rumor.node import logs
from rumor.node.app import run
from rumor.node.config import Config
from rumor.node.server.grpc.server import BindError
from rumor.node.server.security import SecurityError
from rumor.node.server.workers.worker import plan_from_environment
from rumor.node.settings import ConfigError
from rumor.node.storage import StoreLocked
from rumor.node.worker_process import run_worker


def _options(command: Any) -> Any:
    for setting in reversed(Config.settings()):
        flag = "--" + setting.name.replace("_", "-")
        help_text = f"{setting.help} [default: {setting.default}]"
        if setting.kind is bool:
            option = click.option(flag, setting.name, is_flag=True, default=None, help=help_text)
        elif setting.kind is tuple:
            option = click.option(flag, setting.name, multiple=True, help=help_text)
        else:
            kind = click.Choice(setting.choices) if setting.choices else setting.kind
            option = click.option(flag, setting.name, type=kind, default=None, help=help_text)
        command = option(command)
    return command


@click.command("node")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML file of settings (flags and RUMOR_* variables override it).",
)
@_options
def node_command(config_file: str | None, **flags: Any) -> None:
    """Run a Rumor node: serve the KV API over gRPC from a local RocksDB."""
    plan = plan_from_environment()
    if plan is not None:  # started by a node's owner as one of its workers
        sys.exit(run_worker(plan))
    try:
        config = Config.load(flags, config_file=config_file)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    logs.configure(config.log_level, config.log_format)
    if flags.get("api_token"):
        structlog.get_logger(__name__).warning(
            "auth.token_in_argv",
            reason="--api-token shows in `ps` to every user of this host; use"
            " --api-token-file FILE or RUMOR_API_TOKEN instead",
        )
    try:
        status = run(config)
    except (StoreLocked, BindError, SecurityError, ValueError) as exc:
        click.echo(f"rumor node: {exc}", err=True)
        sys.exit(1)
    sys.exit(status)
