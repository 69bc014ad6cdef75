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
                try:
                    command = entry.load()
                except ModuleNotFoundError as exc:
                    if (exc.name or "").startswith("rumor"):
                        raise  # a broken install, not a missing extra
                    # The lab and the benchmarks need the `lab` extra (matplotlib),
                    # which a node's image leaves out: say so instead of failing.
                    command = missing_extra(entry.name, exc.name or str(exc))
                self.add_command(command, entry.name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load()
        return super().get_command(ctx, cmd_name)


def missing_extra(name: str, module: str) -> click.Command:
    """A stand-in for a subcommand whose dependencies are not installed."""

    def fail() -> None:
        raise click.ClickException(
            f"`rumor {name}` needs {module}, which is not installed: pip install 'rumorkv[lab]'"
        )

    return click.Command(
        name,
        callback=fail,
        help="(not installed: pip install 'rumorkv[lab]')",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


@click.group(cls=RumorGroup)
@click.version_option(package_name="rumorkv")
def main() -> None:
    """Rumor: an eventually consistent, replicated key-value store."""
