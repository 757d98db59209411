"""What `lakelab lab check X` and `lakelab reset-lab X` print: each step of a lab, in the course's order, as done or not
yet, with a one-line hint for the first step not done. The labs' checkers (labs/lab_x/check.py)
inspect the real state and return their steps; this module only shows them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import typer
from rich.console import Console
from rich.table import Table

from lakelab.console import console as stdout
from lakelab.console import fail


@dataclass
class Step:
    task: str       # the course's task number or name, e.g. "Tâche 5" or "Ćwiczenie 2"
    title: str      # what the student does, in the course's words
    done: bool
    seen: str       # what the checker found (a count, a table, a state)
    hint: str       # the command or action that does this step


def first_not_done(steps: list[Step]) -> Step | None:
    return next((step for step in steps if not step.done), None)


def show(console: Console, lab: str, steps: list[Step]) -> bool:
    """Print the report; True when every step is done."""
    table = Table("", "task", "step", "seen", title=f"{lab}: {sum(s.done for s in steps)}/{len(steps)} steps done",
                  title_justify="left")
    for step in steps:
        table.add_row("[green]done[/]" if step.done else "[yellow]not yet[/]", step.task, step.title, step.seen)
    console.print(table)
    pending = first_not_done(steps)
    if pending is None:
        console.print("[bold green]all steps done[/]")
        return True
    console.print(f"[bold]next:[/] {pending.task}, {pending.title}: {pending.hint}", highlight=False)
    return False


def check_or_fail(lab: str, read_steps: Callable[[], list[Step]]) -> None:
    """The `check` commands: read the lab's steps and show them; exit 1 while a step is not done,
    or with one line when the stack does not answer."""
    try:
        steps = read_steps()
    except Exception as exc:  # noqa: BLE001 - any server that does not answer: say which, not a traceback
        reason = str(exc).splitlines()[0][:200] if str(exc) else ""
        fail(f"could not read the lab's state ({type(exc).__name__}: {reason}); is the stack up? (lakelab status)")
    if not show(stdout, lab, steps):
        raise typer.Exit(1)


def confirm_and_print(lab: str, yes: bool, reset: Callable[[], list[str]]) -> None:
    """Ask (unless `yes`), reset, and print what was removed."""
    if not yes:
        typer.confirm(f"Put {lab} back to its start (its data is deleted; other labs stay)?", abort=True)
    for line in reset():
        stdout.print(f"reset {line}", highlight=False)
    stdout.print(f"[bold green]{lab} is back at its start[/]")
