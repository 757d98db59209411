"""Lab C commands, registered on the `lakelab` CLI: ingest, workflow, runs, versions, quality, catalog."""

from __future__ import annotations

import json
import signal
from typing import Annotated, Literal, Optional

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.table import Column, Table

from lakelab.settings import get_settings
from producers.company_data import ingest_command, s3_for

console = Console()
UserOption = Annotated[Optional[str], typer.Option("--user", help="act as this declared S3 user (analyst, ingest)")]


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def _s3_fail(exc: Exception, user: str | None) -> None:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        _fail(f"{code} (HTTP {status}) as user {user or 'admin'}")
    _fail(str(exc))


def _split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").removeprefix("s3a://").partition("/")
    if not key:
        _fail(f"not an s3://bucket/key URI: {uri}")
    return bucket, key


# ---------------------------------------------------------------- workflow and runs

workflow_app = typer.Typer(help="Event-driven workflows declared in workflows/*.yaml (Step Functions stand-in).",
                           no_args_is_help=True)


def _workflow(name: str, prefix: str | None, table: str | None, location: str | None):
    from workflows import engine

    wf = engine.load(name)
    if prefix is not None and wf.Trigger:
        wf.Trigger.EventPattern.setdefault("detail", {}).setdefault("object", {})["key"] = [{"prefix": prefix}]
    if wf.Trigger and (table or location):
        target = wf.Trigger.Input.setdefault("target", {})
        target.update({k: v for k, v in {"table": table, "location": location}.items() if v})
    return wf


@workflow_app.command("watch")
def watch(
    name: Annotated[str, typer.Argument(help="workflow name or file")] = "sales_etl",
    source: Annotated[str, typer.Option(help="meta-tail (SeaweedFS) or poll (any S3, e.g. MinIO)")] = "meta-tail",
    prefix: Annotated[Optional[str], typer.Option(help="override the trigger's key prefix")] = None,
    table: Annotated[Optional[str], typer.Option(help="override the target table")] = None,
    location: Annotated[Optional[str], typer.Option(help="override the target table location")] = None,
) -> None:
    """Start a run for every matching Object Created event, until Ctrl-C."""
    from workflows import sales_tasks
    from workflows.watcher import Watcher, watched_location

    settings = get_settings()
    wf = _workflow(name, prefix, table, location)
    mode: Literal["meta-tail", "poll"] = "poll" if source == "poll" else "meta-tail"

    def report(event, outcome) -> None:
        colour = {"SUCCEEDED": "green", "DUPLICATE": "dim"}.get(outcome.status, "red")
        console.print(f"[{colour}]{outcome.status}[/] {outcome.run_id} s3://{event['detail']['bucket']['name']}/"
                      f"{event['detail']['object']['key']} {outcome.error or ''} {(outcome.cause or '')[:120]}")

    watcher = Watcher(settings, wf, mode, report)
    signal.signal(signal.SIGTERM, lambda *_: watcher.stop())
    bucket, key_prefix = watched_location(wf)
    console.print(f"watching s3://{bucket}/{key_prefix} for {wf.Name} ({mode}); Ctrl-C to stop")
    try:
        watcher.run()
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
        sales_tasks.stop_spark()


@workflow_app.command("start")
def start(
    uri: Annotated[str, typer.Argument(help="s3://bucket/key of the object")],
    name: Annotated[str, typer.Argument(help="workflow name or file")] = "sales_etl",
    version_id: Annotated[Optional[str], typer.Option(help="a version of the object (default: current)")] = None,
    table: Annotated[Optional[str], typer.Option(help="override the target table")] = None,
    location: Annotated[Optional[str], typer.Option(help="override the target table location")] = None,
) -> None:
    """Run the workflow once on an object, as if it had just been uploaded (no trigger dedup)."""
    import time

    from workflows import sales_tasks
    from workflows.events import object_created
    from workflows.watcher import start_run

    settings = get_settings()
    bucket, key = _split_uri(uri)
    try:
        head = s3_for(settings, None).head_object(Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {}))
    except (ClientError, BotoCoreError) as exc:
        _s3_fail(exc, None)
    event = object_created(bucket, key, head.get("VersionId"), head["ContentLength"], head["ETag"].strip('"'),
                           time.time_ns(), settings.s3_region)
    try:
        outcome = start_run(settings, _workflow(name, None, table, location), event, dedup=False)
    finally:
        sales_tasks.stop_spark()
    console.print(f"{outcome.status} {outcome.run_id} {outcome.error or ''} {outcome.cause or ''}")
    if outcome.status != "SUCCEEDED":
        raise typer.Exit(1)


@workflow_app.command("show")
def show_workflow(name: Annotated[str, typer.Argument()] = "sales_etl") -> None:
    """The states and transitions a workflow declares."""
    from workflows import engine

    wf = engine.load(name)
    table = Table("state", "type", "resource", "next", "retry", "catch", "timeout", title=f"{wf.Name}: {wf.Comment}")
    for state_name, s in wf.States.items():
        nexts = [s.Next or ""] + [f"{c.get('Variable', '')} -> {c['Next']}" for c in s.Choices]
        nexts += [f"default -> {s.Default}"] if s.Default else []
        table.add_row(("* " if state_name == wf.StartAt else "") + state_name, s.Type, s.Resource or "",
                      "\n".join(n for n in nexts if n),
                      "\n".join(f"{r.ErrorEquals} x{r.MaxAttempts} {r.IntervalSeconds}s*{r.BackoffRate}" for r in s.Retry),
                      "\n".join(f"{c.ErrorEquals} -> {c.Next}" for c in s.Catch),
                      f"{s.TimeoutSeconds:g}s" if s.TimeoutSeconds else "")
    console.print(table)
    if wf.Trigger:
        console.print(f"trigger: {json.dumps(wf.Trigger.EventPattern)}")


runs_app = typer.Typer(help="Workflow runs and their state transitions (kept in PostgreSQL).")


@runs_app.callback(invoke_without_command=True)
def runs_list(
    ctx: typer.Context,
    status: Annotated[Optional[str], typer.Option(help="RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED")] = None,
    limit: Annotated[int, typer.Option()] = 20,
    workflow: Annotated[Optional[str], typer.Option()] = None,
) -> None:
    """List runs, newest first (`lakelab runs show RUN_ID` for one run's transitions)."""
    if ctx.invoked_subcommand:
        return
    from workflows.runs import list_runs

    table = Table(Column("run", no_wrap=True, min_width=24), "status", "state", "object", "started", "s", "error",
                  caption="lakelab runs show RUN for the transitions")
    for r in list_runs(get_settings(), limit, status, workflow):
        colour = {"SUCCEEDED": "green", "RUNNING": "yellow"}.get(r.status, "red")
        obj = (r.trigger_key or "manual").split("@")[0]
        table.add_row(r.run_id, f"[{colour}]{r.status}[/]", r.current_state or "", obj,
                      r.started_at.strftime("%m-%d %H:%M:%S"), f"{r.duration_s:.1f}" if r.duration_s else "",
                      f"{r.error or ''} {(r.cause or '')[:80]}".strip())
    console.print(table)


@runs_app.command("show")
def runs_show(run_id: str) -> None:
    """One run: every state entered, retried, caught, exited, with timings."""
    from workflows.runs import get_run

    run = get_run(run_id, get_settings())
    if run is None:
        _fail(f"no run {run_id}")
    console.print(f"[bold]{run.run_id}[/] {run.workflow} {run.status} {run.error or ''} {run.cause or ''}")
    table = Table("at", "state", "event", "attempt", "detail")
    for e in run.events or []:
        table.add_row(e.at.strftime("%H:%M:%S.%f")[:-3], e.state or "", e.kind, str(e.attempt or ""),
                      json.dumps(e.detail, default=str)[:160] if e.detail is not None else "")
    console.print(table)


# ---------------------------------------------------------------- versions

versions_app = typer.Typer(help="Object versions of a versioned bucket: list, restore, undelete.", no_args_is_help=True)


@versions_app.command("list")
def versions_list(bucket: str, key: str, user: UserOption = None) -> None:
    """Every version and delete marker of a key, newest first."""
    from governance.versioning import list_versions

    try:
        versions = list_versions(s3_for(get_settings(), user), bucket, key)
    except (ClientError, BotoCoreError) as exc:
        _s3_fail(exc, user)
    table = Table("version", "latest", "kind", "size", "last modified", "etag", title=f"s3://{bucket}/{key}")
    for v in versions:
        table.add_row(v.version_id, "*" if v.is_latest else "", "delete marker" if v.delete_marker else "object",
                      "" if v.size is None else str(v.size), v.last_modified.isoformat(timespec="seconds"), v.etag or "")
    console.print(table)


@versions_app.command("restore")
def versions_restore(
    bucket: str, key: str,
    version_id: Annotated[Optional[str], typer.Option(help="version to make current (default: undelete, or the previous one)")] = None,
    user: UserOption = None,
) -> None:
    """Make an older version current again (copy), or remove the delete marker of a deleted key."""
    from governance.versioning import restore

    try:
        console.print(restore(s3_for(get_settings(), user), bucket, key, version_id))
    except (ClientError, BotoCoreError) as exc:
        _s3_fail(exc, user)
    except LookupError as exc:
        _fail(str(exc))


# ---------------------------------------------------------------- quality and catalog

quality_app = typer.Typer(help="Data quality reports (also run by the workflow after each ETL).", no_args_is_help=True)


@quality_app.command("check")
def quality_check(
    source: Annotated[str, typer.Argument(help="s3://bucket/key (CSV, JSON lines, Parquet) or a hive table name")],
    workflow_name: Annotated[str, typer.Option("--workflow", help="take schema and thresholds from this workflow")] = "sales_etl",
    save: Annotated[bool, typer.Option(help="store the report under s3://processed/_quality/")] = True,
    user: UserOption = None,
) -> None:
    """Profile a dataset on demand; exit 1 when it falls under the thresholds."""
    import time

    from governance import quality
    from workflows import engine

    settings = get_settings()
    wf = engine.load(workflow_name)
    step = next((s for s in wf.States.values() if s.Resource and s.Resource.endswith(":quality_check")), None)
    config = quality.QualityConfig.model_validate((step.Parameters or {}).get("thresholds", {}) if step else {})
    schema = wf.Trigger.Input.get("schema") if wf.Trigger else None
    try:
        if source.startswith(("s3://", "s3a://")):
            bucket, key = _split_uri(source)
            body = s3_for(settings, user).get_object(Bucket=bucket, Key=key)["Body"].read()
            header = body.split(b"\n", 1)[0].decode(errors="replace")
            usable = schema if key.endswith(".csv") and schema and all(c in header for c in schema) else None
            data, dataset = quality.read_any(body, key, usable), f"{bucket}/{key}"
        else:
            data, dataset = _trino_table(settings, source), source
    except (ClientError, BotoCoreError) as exc:
        _s3_fail(exc, user)
    report = quality.profile(data, dataset.replace("/", "."), config, f"ondemand-{time.strftime('%Y%m%dT%H%M%S')}")
    console.print(quality.summary_table(report))
    if save:
        uris = quality.save(settings, report)
        console.print(f"report: {uris['json']}  {uris['html']}")
    if not report.passed:
        raise typer.Exit(1)


def _trino_table(settings, table: str):
    import pyarrow as pa

    from services.trino.service import connect

    schema, _, name = table.rpartition(".")
    cursor = connect(settings, "hive", schema or "default").cursor()
    cursor.execute(f'SELECT * FROM "{name}"')
    rows = cursor.fetchall()
    names = [d[0] for d in cursor.description]
    return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})


@quality_app.command("show")
def quality_show(ref: Annotated[str, typer.Argument(help="a run id or the s3:// URI of a report.json")],
                 user: UserOption = None) -> None:
    """Summarise a stored report."""
    from governance import quality
    from workflows.runs import get_run

    settings = get_settings()
    uri = ref
    if not ref.startswith("s3://"):
        run = get_run(ref, settings)
        uri = ((run.output or {}).get("quality") or {}).get("report") if run else None
        if not uri:
            _fail(f"run {ref} has no quality report")
    try:
        report = quality.load(settings, uri, s3_for(settings, user))
    except (ClientError, BotoCoreError) as exc:
        _s3_fail(exc, user)
    console.print(quality.summary_table(report))
    console.print(f"html: {uri.removesuffix('.json')}.html")


def catalog(table: Annotated[str, typer.Argument(help="hive table, e.g. default.processed_sales")]) -> None:
    """Table metadata kept in the metastore: owner, source, last update, row count, quality."""
    from governance.versioning import table_properties

    properties = table_properties(get_settings(), table)
    if not properties:
        _fail(f"no properties for {table}")
    out = Table("property", "value", title=table)
    for k, v in sorted(properties.items()):
        out.add_row(k, str(v)[:120])
    console.print(out)


def register(app: typer.Typer) -> None:
    app.command("ingest", help="Generate Lab C sample data and upload it to s3://raw/ in its native format.")(ingest_command)
    app.add_typer(workflow_app, name="workflow")
    app.add_typer(runs_app, name="runs")
    app.add_typer(versions_app, name="versions")
    app.add_typer(quality_app, name="quality")
    app.command("catalog")(catalog)
