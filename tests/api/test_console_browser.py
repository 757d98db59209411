"""The lake console in headless Chromium through the gateway (dashboard/test/console.test.mjs): each
panel shows state made here (objects with versions, a topic, a table, a workflow run). Leaves
artifacts/console.png."""

from __future__ import annotations

import pytest

from lakelab.settings import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]


def test_the_console_shows_what_the_lake_holds(browser_test, lake_objects, busy_topic, sales_table, recorded_runs):
    _, succeeded, _ = recorded_runs
    browser_test("console.test.mjs", CONSOLE_PREFIX=lake_objects, CONSOLE_TOPIC=busy_topic,
                 CONSOLE_TABLE=f"default.{sales_table}", CONSOLE_RUN=succeeded.run_id)
    assert (ROOT / "artifacts" / "console.png").stat().st_size > 10_000
