"""A checkout's stack runs in one mode at a time. A command given in the other mode (the
`LAKELAB_MODE=compose make demo` of the README, then a plain `lakelab down`) says where the stack
runs and what reaches it, and starts or deletes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from lakelab.settings import Settings
from services import compose, supervisor
from tests.clikit import LAKELAB

pytestmark = pytest.mark.integration
OTHER = {"native": "compose", "compose": "native"}


def _in_the_other_mode(stack, *args: str) -> tuple[int, str, str]:
    """The command's exit status and its outputs, words joined (rich wraps long lines)."""
    answer = subprocess.run([*LAKELAB, *args], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "LAKELAB_MODE": OTHER[stack.mode]})
    return answer.returncode, " ".join(answer.stdout.split()), " ".join(answer.stderr.split())


def _running(stack) -> dict[str, object]:
    """What of the stack runs in each mode: native services' PIDs, this checkout's containers."""
    return {"native": {s.name: supervisor.running_pid(stack, s.name) for s in supervisor.SERVICES},
            "compose": compose.running_containers(stack)}


def _names_the_running_stack(stack, output: str) -> None:
    if stack.mode == "compose":
        assert "this checkout's compose stack is running" in output, output
        assert f"of project {stack.compose_project}" in output and "LAKELAB_MODE=compose lakelab down" in output, output
    else:
        assert "the native stack of this checkout is running" in output, output
        assert "trino" in output and "`lakelab down` without LAKELAB_MODE=compose" in output, output


def test_up_in_the_other_mode_starts_nothing_and_names_the_running_stack(stack):
    before = _running(stack)
    status, _, error = _in_the_other_mode(stack, "up")
    assert status == 1
    assert error.startswith("error: not started:"), error
    _names_the_running_stack(stack, error)
    assert _running(stack) == before


def test_status_in_the_other_mode_says_where_the_stack_runs(stack):
    _, output, _ = _in_the_other_mode(stack, "status")
    _names_the_running_stack(stack, output)


@pytest.mark.skipif(Settings().mode != "compose", reason="a native reset beside running containers")
def test_a_native_reset_beside_the_running_containers_deletes_nothing(stack):
    secrets = sorted(p.relative_to(stack.state_dir) for p in (stack.state_dir / "secrets").rglob("*"))
    assert secrets, "the compose stack's mounted secrets are in the state folder"
    status, _, error = _in_the_other_mode(stack, "reset", "--yes")
    assert status == 1
    assert error.startswith("error: nothing deleted:"), error
    _names_the_running_stack(stack, error)
    assert sorted(p.relative_to(stack.state_dir) for p in (stack.state_dir / "secrets").rglob("*")) == secrets
    assert all(c.healthy for c in compose.status_of(stack))


@pytest.mark.skipif(Settings().mode == "native" and shutil.which("docker") is None,
                    reason="compose mode's down needs Docker")
def test_down_in_the_other_mode_stops_nothing_and_names_the_running_stack(stack):
    before = _running(stack)
    status, output, error = _in_the_other_mode(stack, "down")
    assert status == 0, error
    _names_the_running_stack(stack, output)
    assert _running(stack) == before
