"""The `rumor` command: a click group assembled from the ``rumor.cli`` entry points.

Each part of Rumor contributes its own subcommands (the node contributes
``node``), so no part has to import another to appear on the command line.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import click


class RumorGroup(click.Group):
    def _load(self) -> None:
        if getattr(self, "_loaded", False):
            return
        self._loaded = True
        for entry in entry_points(group="rumor.cli"):
            if entry.name not in self.commands:
                self.add_command(entry.load(), entry.name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load()
        return super().get_command(ctx, cmd_name)


@click.group(cls=RumorGroup)
@click.version_option(package_name="rumorkv")
def main() -> None:
    """Rumor: an eventually consistent, replicated key-value store."""
