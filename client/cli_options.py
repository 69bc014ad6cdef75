"""The options every client command shares (``--endpoint``, ``--api-token``, ``--ca``,
``--timeout``), accepted anywhere on the line as wrangler accepts its global flags.

``rumor kv key get k --namespace N --endpoint H`` works as well as
``rumor kv --endpoint H key get k --namespace N``: before click parses a group
that declares them, ``hoisted`` moves these options (and their values) to the
front. Everything after ``--`` is left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from rumor.client.connection import TLS
from rumor.client.sync import Client

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_ENDPOINT = "127.0.0.1:7401"


class Settings:
    """Where and how to reach the cluster, from the shared options."""

    def __init__(self, endpoint: str, api_token: str | None, ca: str | None, timeout: float):
        self.endpoints = [e for e in endpoint.split(",") if e.strip()]
        self.api_token = api_token
        self.ca = ca
        self.timeout = timeout
        # `rumor kv --session TOKEN`: every call after that token; --print-session: say the
        # session's token at the end.
        self.session: str | None = None
        self.print_session = False

    def client(self) -> Client:
        tls = TLS(ca=self.ca) if self.ca else None
        return Client(self.endpoints, api_token=self.api_token, timeout=self.timeout, tls=tls)


def connection_options(command: F) -> F:
    """Declare the shared options on a group (its callback gets them as keywords)."""
    command = click.option("--timeout", default=30.0, show_default=True, help="Seconds per call.")(
        command
    )
    command = click.option(
        "--ca", default=None, type=click.Path(dir_okay=False), help="CA file: use TLS."
    )(command)
    command = click.option(
        "--api-token", envvar="RUMOR_API_TOKEN", default=None, help="Env RUMOR_API_TOKEN."
    )(command)
    return click.option(
        "--endpoint",
        envvar="RUMOR_ENDPOINT",
        default=DEFAULT_ENDPOINT,
        show_default=True,
        help="Node address HOST:PORT (comma-separate several for failover). Env RUMOR_ENDPOINT.",
    )(command)


def hoisted(args: Sequence[str], with_value: set[str], flags: set[str]) -> list[str]:
    """``args`` with the options named in ``with_value`` (and their values) or ``flags``
    moved to the front, in their order; nothing after ``--`` moves."""
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest.extend(args[index:])
            break
        name = arg.split("=", 1)[0]
        if arg in with_value and index + 1 < len(args):
            front.extend(args[index : index + 2])
            index += 2
            continue
        if (name in with_value and "=" in arg) or arg in flags:
            front.append(arg)
        else:
            rest.append(arg)
        index += 1
    return front + rest


class GlobalOptionsGroup(click.Group):
    """A group whose own options may also be given after its subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with_value: set[str] = set()
        flags: set[str] = set()
        for param in self.params:
            if isinstance(param, click.Option):
                names = {*param.opts, *param.secondary_opts}
                (flags if param.is_flag else with_value).update(names)
        return super().parse_args(ctx, hoisted(args, with_value, flags))
