"""The `lakelab` command as a user runs it, for the tests that drive the CLI: this interpreter's
entry point, so the checkout's code and its virtual environment are the ones under test."""

from __future__ import annotations

import sys

LAKELAB = [sys.executable, "-m", "lakelab.cli"]
