"""Commands over every lab: `lakelab lab check A|B|C|D` and `lakelab reset-lab A|B|C|D`.

Each lab keeps its own checker and reset in its home (labs/lab_x/check.py, reset.py), also
reachable as `lakelab lab-x check` and `lakelab lab-x reset`; these two commands only pick the lab
and import its module when they run (a lab's reset may load pyspark)."""

from __future__ import annotations

from importlib import import_module
from typing import Annotated

import typer

from lakelab.console import fail

LABS = ("lab_a", "lab_b", "lab_c", "lab_d")
LabName = Annotated[str, typer.Argument(help="A, B, C or D (also lab_a, lab-a)", show_default=False)]

app = typer.Typer(help="The labs: where you are in each (check).", no_args_is_help=True)


@app.callback()
def labs() -> None:
    """The labs: where you are in each (`lakelab lab check A`)."""


def lab_home(name: str) -> str:
    """`A`, `a`, `lab_a`, `lab-a` -> `lab_a`; an unknown name ends the command."""
    key = name.strip().lower().replace("-", "_").removeprefix("lab_").removeprefix("lab")
    if f"lab_{key}" not in LABS:
        fail(f"unknown lab {name!r}: use A, B, C or D")
    return f"lab_{key}"


@app.command()
def check(lab: LabName) -> None:
    """Each step of the lab, in the course's order, done or not yet (read from the stack), and a
    hint for the next one; exit 1 while a step is not done."""
    import_module(f"labs.{lab_home(lab)}.check").check()


def reset_lab(
    lab: LabName,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
) -> None:
    """Put one lab back to its start (its topics' records, tables, files, checkpoints, connector,
    runs); the other labs and the stack stay as they are."""
    import_module(f"labs.{lab_home(lab)}.reset").reset_command(yes=yes)
