"""`lakelab lab check X` and `lakelab reset-lab X`: the lab names they take, the report they print."""

import io

import pytest
import typer
from rich.console import Console

from labs.cli import lab_home
from labs.report import Step, check_or_fail, show

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", ["A", "a", "lab_a", "lab-a", "LAB-A", " a "])
def test_a_lab_is_named_by_its_letter_or_its_home(name):
    assert lab_home(name) == "lab_a"


def test_an_unknown_lab_ends_the_command():
    with pytest.raises(typer.Exit):
        lab_home("E")


def test_the_report_shows_every_step_and_the_hint_of_the_first_not_done():
    out = io.StringIO()
    done = show(Console(file=out, width=200), "Lab X", [
        Step("Task 1", "create the stream", True, "topic ok", "lakelab apply"),
        Step("Task 2", "send records", False, "0 records", "lakelab lab-x generate"),
        Step("Task 3", "query them", False, "no table", "lakelab sql"),
    ])
    text = out.getvalue()
    assert not done
    assert "1/3 steps done" in text
    assert "next: Task 2, send records: lakelab lab-x generate" in text
    assert "lakelab sql" not in text.split("next:")[1]


def test_a_check_that_cannot_reach_the_stack_says_so_in_one_line(capsys):
    def unreachable():
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    with pytest.raises(typer.Exit):
        check_or_fail("Lab X", unreachable)
    assert "could not read the lab's state (ConnectionRefusedError" in " ".join(capsys.readouterr().err.split())
