"""`/runs`: workflow runs recorded by the engine, read back through the gateway."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]


def test_runs_lists_the_workflows_runs_newest_first(gateway, recorded_runs):
    name, succeeded, failed = recorded_runs
    response = gateway.get("/runs", params={"workflow": name})
    assert response.status_code == 200
    listed = response.json()
    assert [(r["run_id"], r["status"]) for r in listed] == [(failed.run_id, "FAILED"), (succeeded.run_id, "SUCCEEDED")]
    assert listed[0]["error"] == "NotOk"
    only_failed = gateway.get("/runs", params={"workflow": name, "status": "FAILED"}).json()
    assert [r["run_id"] for r in only_failed] == [failed.run_id]


def test_one_run_carries_its_state_transitions(gateway, recorded_runs):
    _, succeeded, _ = recorded_runs
    run = gateway.get(f"/runs/{succeeded.run_id}").json()
    assert run["status"] == "SUCCEEDED"
    visited = [e["state"] for e in run["events"] if e["state"]]
    assert list(dict.fromkeys(visited)) == ["Check", "Done"]
    assert all(e["kind"] and e["at"] for e in run["events"])


def test_unknown_run_is_404_and_runs_need_a_key(gateway, settings):
    assert gateway.get("/runs/no-such-run").status_code == 404
    assert httpx.get(f"{settings.gateway_url}/runs", timeout=10).status_code == 401
