"""Code of the checkout run as an unprivileged user (`nobody`), for the tests of what a user's
`lakelab` meets; switching user needs root."""

from __future__ import annotations

import subprocess
import sysconfig
import textwrap

from lakelab.settings import ROOT


def run_as_nobody(code: str, **options) -> subprocess.CompletedProcess:
    """`code` (dedented) run by the system's Python as `nobody`, with the checkout and its virtual
    environment's packages importable: the venv links to an interpreter only its owner may run."""
    imports = f"import sys\nsys.path[:0] = [{str(ROOT)!r}, {sysconfig.get_paths()['purelib']!r}]\n"
    return subprocess.run(["/usr/bin/python3", "-c", imports + textwrap.dedent(code)], user="nobody", cwd="/",
                          capture_output=True, text=True, timeout=60, **options)
