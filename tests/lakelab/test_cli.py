import pytest
from typer.testing import CliRunner

from lakelab.cli import app

pytestmark = pytest.mark.unit
runner = CliRunner()


def test_every_lab_registers_its_commands_the_same_way():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("up", "down", "status", "logs", "sql", "lab-a", "lab-b", "lab-c", "lab-d"):
        assert command in result.output
    for lab, subcommand in (("lab-a", "demo"), ("lab-a", "stream"), ("lab-b", "deliver"), ("lab-c", "workflow"),
                            ("lab-d", "sink")):
        lab_help = runner.invoke(app, [lab, "--help"])
        assert lab_help.exit_code == 0, lab_help.output
        assert subcommand in lab_help.output


def test_an_unknown_command_is_refused():
    result = runner.invoke(app, ["lab-z"])
    assert result.exit_code == 2
    assert "No such command 'lab-z'" in result.output
