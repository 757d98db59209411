"""The dashboard in headless Chromium through the gateway (dashboard/test/dashboard.test.mjs, run
with node's test runner; playwright-core drives Debian's chromium). Leaves artifacts/dashboard.png."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from lakelab.install import ensure_debian_packages
from lakelab.settings import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]

DASHBOARD = ROOT / "dashboard"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def test_dashboard_in_a_browser(settings):
    ensure_debian_packages({CHROMIUM: "chromium"})
    if shutil.which("npm") is None:
        ensure_debian_packages({"/usr/bin/npm": "npm"})
    if not (DASHBOARD / "node_modules" / "playwright-core").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=DASHBOARD, check=True, timeout=300)
    env = {**os.environ, "LAKELAB_GATEWAY_URL": settings.gateway_url, "LAKELAB_API_KEYS": settings.api_keys.get_secret_value(),
           "CHROMIUM": CHROMIUM}
    result = subprocess.run(["node", "--test", "test/"], cwd=DASHBOARD, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert (ROOT / "artifacts" / "dashboard.png").stat().st_size > 10_000
