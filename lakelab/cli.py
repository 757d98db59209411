"""`lakelab`: one command line for the stack, the AWS stand-ins and the labs.

The commands come from the `lakelab.commands` entry points (pyproject.toml), each imported only
when it runs: the stack's in `services/cli.py`, the labs' in `labs/<lab>/cli.py`. This module
knows none of them, so the platform imports no lab code and `lakelab status` loads neither Spark
nor the labs. A lab's group can defer its own heavy commands the same way (`lazy_commands`).
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points

import click
import typer
from typer.core import TyperGroup

from lakelab.console import err_console
from lakelab.secrets import ENV_FILE, ensure_env_file

GROUP = "lakelab.commands"


def as_click(name: str, target: object) -> click.Command:
    """A Typer app becomes a command group, a function a single command."""
    if not isinstance(target, typer.Typer):
        single = typer.Typer()
        single.command(name)(target)
        target = single
    command = typer.main.get_command(target)
    command.name = name
    return command


class LazyCommands(TyperGroup):
    """A group whose commands are imported when they run: `targets` maps a name to "module:attribute"."""

    targets: dict[str, str] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *self.targets]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.targets:
            module, _, attribute = self.targets[name].partition(":")
            return as_click(name, getattr(import_module(module), attribute))
        return super().get_command(ctx, name)


def lazy_commands(targets: dict[str, str]) -> type[LazyCommands]:
    """The group class of a Typer app (`typer.Typer(cls=...)`) that adds these lazy commands."""
    return type("LazyCommands", (LazyCommands,), {"targets": targets})


app = typer.Typer(cls=lazy_commands({entry.name: entry.value for entry in entry_points(group=GROUP)}),
                  no_args_is_help=True)


@app.callback()
def main() -> None:
    """A local-first AWS data lake: S3, Kafka, Spark + Hudi, Hive Metastore, Trino, Debezium."""
    if generated := ensure_env_file():
        err_console.print(f"generated in {ENV_FILE} (mode 0600): {', '.join(generated)}")


if __name__ == "__main__":
    app()
