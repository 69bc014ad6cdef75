"""Where `rumor kv` and `rumor worker` speak besides their results: stderr.

``stderr`` is the console for messages, progress and warnings (without rich's
markup, so keys and titles print literally, whatever brackets they hold).
An error is one line there and exit status 1, never a traceback: ``fail``
raises one, and a ``KVGroup`` turns every SDK, file and JSON error of its
commands into one, with the node's message.
"""

from __future__ import annotations

from typing import Any, NoReturn

import click
from rich.console import Console

from rumor.client.cli_options import GlobalOptionsGroup
from rumor.client.errors import RumorError

# No markup: keys and titles are printed literally, whatever brackets they hold.
stderr = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


class CommandError(click.ClickException):
    """One line on stderr, exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"✘ {self.format_message()}", err=True)


def fail(message: str) -> NoReturn:
    raise CommandError(message)


class KVGroup(GlobalOptionsGroup):
    """Turns every SDK, file and JSON error into one clear line (the node's message)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RumorError as exc:
            raise CommandError(exc.message) from None
        except (TypeError, ValueError, OSError) as exc:
            raise CommandError(str(exc)) from None
