"""Durable run history of the workflows (the Step Functions execution history stand-in), in the
stack's PostgreSQL, database `lakelab` (declared in resources.yaml, created here if missing).

`list_runs()` and `get_run()` are the read side for the CLI (`lakelab lab-c runs`) and the query API.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import BaseModel
from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from lakelab.settings import Settings, get_settings
from services.postgres.client import get_client

DATABASE = "lakelab"

SCHEMA = """
CREATE TABLE IF NOT EXISTS workflow_runs (
    run_id        text PRIMARY KEY,
    workflow      text NOT NULL,
    status        text NOT NULL,
    current_state text,
    trigger_key   text,
    input         jsonb NOT NULL,
    output        jsonb,
    error         text,
    cause         text,
    worker        text,
    started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at   timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS workflow_runs_trigger ON workflow_runs (workflow, trigger_key);
CREATE INDEX IF NOT EXISTS workflow_runs_started ON workflow_runs (started_at DESC);
CREATE TABLE IF NOT EXISTS workflow_events (
    id      bigserial PRIMARY KEY,
    run_id  text NOT NULL REFERENCES workflow_runs ON DELETE CASCADE,
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    state   text,
    kind    text NOT NULL,
    attempt integer,
    detail  jsonb
);
CREATE INDEX IF NOT EXISTS workflow_events_run ON workflow_events (run_id, id);
-- Which content each processed partition holds now: the idempotency ledger of the ETL.
CREATE TABLE IF NOT EXISTS processed_sources (
    table_name     text NOT NULL,
    source_id      text NOT NULL,
    source_uri     text NOT NULL,
    version_id     text,
    content_sha256 text NOT NULL,
    run_id         text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (table_name, source_id)
);
CREATE TABLE IF NOT EXISTS watcher_checkpoints (
    name       text PRIMARY KEY,
    ts_ns      bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""

_transient = retry(retry=retry_if_exception_type(psycopg.OperationalError), stop=stop_after_attempt(4),
                   wait=wait_exponential(multiplier=0.2, max=2), reraise=True)


_ENSURED: set[tuple[str, int]] = set()


def _ensure(settings: Settings) -> None:
    if (settings.pg_host, settings.pg_port) in _ENSURED:
        return
    with get_client(settings, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
            except psycopg.errors.DuplicateDatabase:
                pass
    with get_client(settings, DATABASE, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(7007)")
        try:
            conn.execute(SCHEMA)
        finally:
            conn.execute("SELECT pg_advisory_unlock(7007)")
    _ENSURED.add((settings.pg_host, settings.pg_port))


@_transient
def db(settings: Settings | None = None) -> psycopg.Connection:
    """A connection to the `lakelab` database, its tables created on first use."""
    settings = settings or get_settings()
    _ensure(settings)
    return get_client(settings, DATABASE, autocommit=True)


def _json(value: Any) -> Jsonb:
    return Jsonb(json.loads(json.dumps(value, default=str)))


class RunStore:
    """The workflow interpreter's recorder: one row per run, one per transition."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def start(self, run_id: str, workflow: str, data: Any, trigger_key: str | None) -> bool:
        with db(self.settings) as conn:
            row = conn.execute(
                """INSERT INTO workflow_runs (run_id, workflow, status, trigger_key, input, worker)
                   VALUES (%s, %s, 'RUNNING', %s, %s, %s) ON CONFLICT DO NOTHING RETURNING run_id""",
                (run_id, workflow, trigger_key, _json(data), self.worker),
            ).fetchone()
        return row is not None

    def event(self, run_id: str, state: str | None, kind: str, attempt: int | None = None, detail: Any = None) -> None:
        with db(self.settings) as conn:
            conn.execute("INSERT INTO workflow_events (run_id, state, kind, attempt, detail) VALUES (%s, %s, %s, %s, %s)",
                         (run_id, state, kind, attempt, None if detail is None else _json(detail)))
            if kind == "StateEntered":
                conn.execute("UPDATE workflow_runs SET current_state = %s, updated_at = clock_timestamp() WHERE run_id = %s",
                             (state, run_id))

    def finish(self, run_id: str, status: str, output: Any = None, error: str | None = None,
               cause: str | None = None) -> None:
        with db(self.settings) as conn:
            conn.execute(
                """UPDATE workflow_runs SET status = %s, output = %s, error = %s, cause = %s,
                          updated_at = clock_timestamp(), finished_at = clock_timestamp() WHERE run_id = %s""",
                (status, _json(output), error, cause, run_id),
            )

    def abort_orphans(self) -> int:
        """Runs this host's dead workers left RUNNING are marked ABORTED (a restart cannot resume
        a Spark job half-way; the idempotent ETL makes a manual re-start safe)."""
        host = socket.gethostname()
        with db(self.settings) as conn:
            rows = conn.execute("SELECT run_id, worker FROM workflow_runs WHERE status = 'RUNNING' AND worker LIKE %s",
                                (f"{host}:%",)).fetchall()
            dead = [run_id for run_id, worker in rows if not _alive(int(worker.rsplit(":", 1)[1]))]
            for run_id in dead:
                # the trigger is released, so the event replayed after a restart starts a new run
                conn.execute("UPDATE workflow_runs SET trigger_key = trigger_key || '#aborted' WHERE run_id = %s",
                             (run_id,))
                conn.execute("INSERT INTO workflow_events (run_id, kind, detail) VALUES (%s, 'ExecutionAborted', %s)",
                             (run_id, _json({"cause": "worker process gone"})))
                conn.execute("""UPDATE workflow_runs SET status = 'ABORTED', error = 'States.Aborted',
                                cause = 'worker process gone', finished_at = clock_timestamp() WHERE run_id = %s""",
                             (run_id,))
        return len(dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunEvent(BaseModel):
    at: datetime
    state: str | None
    kind: str
    attempt: int | None
    detail: Any = None


class Run(BaseModel):
    run_id: str
    workflow: str
    status: str
    current_state: str | None
    trigger_key: str | None
    error: str | None
    cause: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    input: Any = None
    output: Any = None
    events: list[RunEvent] | None = None


_RUN_COLUMNS = """run_id, workflow, status, current_state, trigger_key, error, cause, started_at, finished_at,
                  EXTRACT(EPOCH FROM (coalesce(finished_at, clock_timestamp()) - started_at))::float8, input, output"""


def _run(row: tuple) -> Run:
    names = ["run_id", "workflow", "status", "current_state", "trigger_key", "error", "cause", "started_at",
             "finished_at", "duration_s", "input", "output"]
    return Run(**dict(zip(names, row)))


def list_runs(settings: Settings | None = None, limit: int = 50, status: str | None = None,
              workflow: str | None = None, trigger_prefix: str | None = None) -> list[Run]:
    """The newest runs first, with their current state and outcome (no per-state events)."""
    where, args = [], []
    if status:
        where.append("status = %s"), args.append(status.upper())
    if workflow:
        where.append("workflow = %s"), args.append(workflow)
    if trigger_prefix:
        where.append("trigger_key LIKE %s"), args.append(trigger_prefix.replace("%", r"\%") + "%")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    with db(settings) as conn:
        rows = conn.execute(f"SELECT {_RUN_COLUMNS} FROM workflow_runs {clause} ORDER BY started_at DESC LIMIT %s",
                            (*args, limit)).fetchall()
    return [_run(r) for r in rows]


def get_run(run_id: str, settings: Settings | None = None) -> Run | None:
    """One run with every recorded transition, oldest first."""
    with db(settings) as conn:
        row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM workflow_runs WHERE run_id = %s", (run_id,)).fetchone()
        if row is None:
            return None
        events = conn.execute("SELECT at, state, kind, attempt, detail FROM workflow_events WHERE run_id = %s ORDER BY id",
                              (run_id,)).fetchall()
    run = _run(row)
    run.events = [RunEvent(at=a, state=s, kind=k, attempt=n, detail=d) for a, s, k, n, d in events]
    return run


def run_for_trigger(trigger_key: str, workflow: str | None = None, settings: Settings | None = None) -> Run | None:
    with db(settings) as conn:
        row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM workflow_runs WHERE trigger_key = %s"
                           + (" AND workflow = %s" if workflow else "") + " ORDER BY started_at DESC LIMIT 1",
                           (trigger_key, workflow) if workflow else (trigger_key,)).fetchone()
    return _run(row) if row else None


# ---------------------------------------------------------------- idempotency ledger and checkpoints


def processed_content(table: str, settings: Settings | None = None) -> dict[str, tuple[str, str]]:
    """source_id -> (content sha256, source uri) of what each partition of `table` holds now."""
    with db(settings) as conn:
        rows = conn.execute("SELECT source_id, content_sha256, source_uri FROM processed_sources WHERE table_name = %s",
                            (table,)).fetchall()
    return {source_id: (sha, uri) for source_id, sha, uri in rows}


def record_processed(table: str, source_id: str, source_uri: str, version_id: str | None, sha256: str, run_id: str,
                     settings: Settings | None = None) -> None:
    with db(settings) as conn:
        conn.execute(
            """INSERT INTO processed_sources (table_name, source_id, source_uri, version_id, content_sha256, run_id)
               VALUES (%s, %s, %s, %s, %s, %s)
               ON CONFLICT (table_name, source_id) DO UPDATE SET source_uri = EXCLUDED.source_uri,
                   version_id = EXCLUDED.version_id, content_sha256 = EXCLUDED.content_sha256,
                   run_id = EXCLUDED.run_id, updated_at = clock_timestamp()""",
            (table, source_id, source_uri, version_id, sha256, run_id),
        )


def checkpoint(name: str, settings: Settings | None = None) -> int | None:
    with db(settings) as conn:
        row = conn.execute("SELECT ts_ns FROM watcher_checkpoints WHERE name = %s", (name,)).fetchone()
    return row[0] if row else None


def save_checkpoint(name: str, ts_ns: int, settings: Settings | None = None) -> None:
    with db(settings) as conn:
        conn.execute("""INSERT INTO watcher_checkpoints (name, ts_ns) VALUES (%s, %s)
                        ON CONFLICT (name) DO UPDATE SET ts_ns = GREATEST(watcher_checkpoints.ts_ns, EXCLUDED.ts_ns),
                        updated_at = clock_timestamp()""", (name, ts_ns))
