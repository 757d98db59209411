"""`/runs`: the workflow runs (Lab C's Step Functions stand-in) and their state transitions,
from the run history the workflow engine keeps in PostgreSQL."""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, Path, Query

from api.deps import ApiKeyDep, SettingsDep
from api.errors import INVALID, RATE_LIMITED, UNAUTHORIZED, ApiError, Error
from aws.stepfunctions import runs
from aws.stepfunctions.runs import Run

router = APIRouter(tags=["runs"])

HISTORY_DOWN = {503: {"model": Error, "description": "the run history (PostgreSQL) is not answering"}}
NOT_FOUND = {404: {"model": Error, "description": "no run with this id"}}


def _history_down(exc: psycopg.Error) -> ApiError:
    return ApiError(503, "unavailable", f"the run history (PostgreSQL) is not answering: {exc}".strip(),
                    service="postgres")


@router.get("/runs", response_model=list[Run], summary="List workflow runs, newest first",
            description="Each run's workflow, status, current state, trigger object and outcome.",
            responses={**UNAUTHORIZED, **INVALID, **RATE_LIMITED, **HISTORY_DOWN})
def list_workflow_runs(
    settings: SettingsDep,
    _: ApiKeyDep,
    limit: Annotated[int, Query(ge=1, le=500, description="at most this many runs")] = 50,
    status: Annotated[str | None, Query(pattern=r"^[A-Za-z_]{1,20}$", description="e.g. SUCCEEDED, FAILED, RUNNING")] = None,
    workflow: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.-]{1,100}$", description="workflow name")] = None,
) -> list[Run]:
    try:
        return runs.list_runs(settings, limit=limit, status=status, workflow=workflow)
    except psycopg.Error as exc:
        raise _history_down(exc) from exc


@router.get("/runs/{run_id}", response_model=Run, summary="One workflow run with every state transition",
            responses={**UNAUTHORIZED, **NOT_FOUND, **INVALID, **RATE_LIMITED, **HISTORY_DOWN})
def get_workflow_run(
    settings: SettingsDep,
    _: ApiKeyDep,
    run_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")],
) -> Run:
    try:
        run = runs.get_run(run_id, settings)
    except psycopg.Error as exc:
        raise _history_down(exc) from exc
    if run is None:
        raise ApiError(404, "not_found", f"no workflow run {run_id}")
    return run
