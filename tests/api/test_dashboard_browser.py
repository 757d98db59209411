"""The dashboard's reports and SQL box in headless Chromium through the gateway
(dashboard/test/dashboard.test.mjs). Leaves artifacts/dashboard.png."""

from __future__ import annotations

import pytest

from lakelab.settings import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]


def test_dashboard_in_a_browser(browser_test):
    browser_test("dashboard.test.mjs")
    assert (ROOT / "artifacts" / "dashboard.png").stat().st_size > 10_000
