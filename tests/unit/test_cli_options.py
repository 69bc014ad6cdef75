"""The shared client options (--endpoint, --api-token, --ca, --timeout) anywhere on the line."""

from __future__ import annotations

import click
from click.testing import CliRunner

from rumor.client.cli_options import GlobalOptionsGroup, Settings, connection_options, hoisted

VALUED = {"--endpoint", "--api-token", "--ca", "--timeout"}


def test_options_after_the_subcommand_move_to_the_front() -> None:
    args = ["key", "get", "k", "--namespace", "N", "--endpoint", "H:1", "--api-token=t"]
    assert hoisted(args, VALUED, set()) == [
        "--endpoint", "H:1", "--api-token=t", "key", "get", "k", "--namespace", "N",
    ]  # fmt: skip


def test_nothing_after_a_double_dash_moves() -> None:
    args = ["key", "put", "k", "--", "--endpoint", "literal"]
    assert hoisted(args, VALUED, set()) == args


def test_an_option_without_its_value_is_left_for_click_to_report() -> None:
    assert hoisted(["key", "--endpoint"], VALUED, set()) == ["key", "--endpoint"]


@click.group(cls=GlobalOptionsGroup)
@connection_options
@click.pass_context
def demo(
    ctx: click.Context, endpoint: str, api_token: str | None, ca: str | None, timeout: float
) -> None:
    ctx.obj = Settings(endpoint, api_token, ca, timeout)


@demo.group()
def key() -> None:
    pass


@key.command()
@click.argument("name")
@click.option("--namespace")
@click.pass_obj
def get(settings: Settings, name: str, namespace: str) -> None:
    click.echo(f"{settings.endpoints} {settings.api_token} {settings.timeout} {name} {namespace}")


def test_a_group_accepts_its_options_anywhere() -> None:
    runner = CliRunner()
    late = runner.invoke(
        demo, ["key", "get", "k", "--namespace", "N", "--endpoint", "h:1", "--timeout", "5"]
    )
    assert late.exit_code == 0, late.output
    assert late.output.strip() == "['h:1'] None 5.0 k N"
    early = runner.invoke(demo, ["--api-token", "t", "key", "get", "k", "--namespace", "N"])
    assert early.output.strip() == "['127.0.0.1:7401'] t 30.0 k N"
