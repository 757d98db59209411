"""Probes of the installer's Debian packages: on a machine where another package manager is busy
(unattended upgrades at boot) it waits for the dpkg/apt locks, bounded, and names their holder; a
user who may not run apt-get is told what to run as root."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from lakelab.install import InstallError, ensure_debian_packages
from tests.userkit import run_as_nobody

pytestmark = [pytest.mark.unit]
LOCKS = ("/var/lib/apt/lists/lock", "/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock")
# A package every Debian machine has, asked for by a path that does not exist, so apt-get runs.
INSTALLED = {"/nonexistent/lakelab-lock-probe": "coreutils"}


def _hold_locks(seconds: float) -> subprocess.Popen:
    """Another process holding apt's locks the way apt does (fcntl record locks)."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time\n"
        f"files = [open(p, 'a') for p in {LOCKS!r}]\n"
        "for f in files: fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "print('held', flush=True)\n"
        f"time.sleep({seconds})\n")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.fixture(autouse=True)
def _as_root():
    if os.geteuid() != 0:
        pytest.skip("takes apt's locks or switches user, which only root may: runs as root (CI does)")


def test_a_held_lock_past_the_wait_names_the_lock_and_its_holder():
    holder = _hold_locks(30)
    try:
        with pytest.raises(InstallError) as failed:
            ensure_debian_packages(INSTALLED, lock_wait_s=3)
    finally:
        holder.kill()
        holder.wait()
    message = str(failed.value)
    assert "after waiting 3 s for /var/lib/apt/lists/lock" in message
    assert f"held by process {holder.pid}" in message


def test_the_installer_waits_for_a_lock_that_is_released():
    holder = _hold_locks(6)
    began = time.monotonic()
    try:
        ensure_debian_packages(INSTALLED, lock_wait_s=120)
    finally:
        holder.wait()
    assert time.monotonic() - began >= 5, "it ran before the lock was released"


def test_a_user_who_may_not_run_apt_get_is_told_the_command_to_run_as_root():
    """`nobody` lacks a package: with no `sudo` here (or one that refuses it: no terminal, not a
    sudoer), the install stops with the packages and the command, not a traceback."""
    # a session of its own: no terminal for sudo to ask a password on
    answer = run_as_nobody(f"""
        from lakelab.install import InstallError, ensure_debian_packages
        try:
            ensure_debian_packages({INSTALLED!r})
        except InstallError as error:
            print(error)
    """, start_new_session=True, stdin=subprocess.DEVNULL)
    assert answer.returncode == 0, answer.stderr
    assert "as root, run `apt-get install coreutils`" in answer.stdout, answer.stdout
