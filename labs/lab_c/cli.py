"""`lakelab lab-c ...`: the company data lake, one command each.

    lakelab lab-c ingest sales                 # sample data into s3://raw/ (also: events, logs, sql, all)
    lakelab lab-c workflow watch               # S3 upload -> validate -> Spark ETL -> quality (long-running)
    lakelab lab-c workflow start s3://raw/sales/sales_data_london.csv
    lakelab lab-c runs [show RUN]              # the workflow's run history
    lakelab lab-c versions list|restore BUCKET KEY
    lakelab lab-c quality check|show ...       # data-quality reports
    lakelab lab-c catalog default.processed_sales
    lakelab lab-c stream send|deliver|crawl    # the KDG's CSV lines -> raw bucket -> table
    lakelab lab-c check                        # which parts of the lab are done, the hint for the next
    lakelab lab-c reset                        # the lab back to its start (uploads, table, runs)
"""

from __future__ import annotations

import json
import signal
import time
from typing import Annotated, Optional

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.table import Column, Table

from aws.stepfunctions.runs import get_run, list_runs
from labs.lab_c import quality, stream, versioning, workflow
from labs.lab_c.check import check
from labs.lab_c.reset import reset_command
from labs.lab_c.watcher import Watcher, start_for_object, watched_location
from lakelab.cli import lazy_commands
from lakelab.console import console, fail
from lakelab.resources import resources
from lakelab.settings import get_settings
from producers.lab_c import generate_command, ingest_command
from services.s3.client import describe_error, get_client

LAB = resources().labs.lab_c
UserOption = Annotated[Optional[str], typer.Option("--user", help="act as this declared S3 user (analyst, ingest)")]

# The Spark job loads pyspark, which takes seconds: it is imported only when it runs.
app = typer.Typer(cls=lazy_commands({"etl": "spark_jobs.lab_c:etl"}), no_args_is_help=True,
                  help="Lab C, the company data lake: ingest, workflow, runs, versions, quality, catalog.")
app.command("ingest")(ingest_command)
app.command("generate")(generate_command)
app.add_typer(stream.app, name="stream")
app.command("check")(check)
app.command("reset")(reset_command)

# ---------------------------------------------------------------- workflow and runs

workflow_app = typer.Typer(help="The event-driven workflow of labs/lab_c/sales_etl.yaml (Step Functions stand-in).",
                           no_args_is_help=True)
app.add_typer(workflow_app, name="workflow")
WorkflowFile = Annotated[str, typer.Argument(help="workflow file")]


@workflow_app.command("watch")
def watch(
    path: WorkflowFile = str(workflow.WORKFLOW_FILE),
    prefix: Annotated[Optional[str], typer.Option(help="override the trigger's key prefix")] = None,
    table: Annotated[Optional[str], typer.Option(help="override the target table")] = None,
    location: Annotated[Optional[str], typer.Option(help="override the target table location")] = None,
) -> None:
    """Start a run for every matching Object Created event, until Ctrl-C."""
    # the workflow's tasks bring pyspark, which takes seconds to load: only these commands pay for it
    from labs.lab_c import tasks

    declared = workflow.load(path, prefix, table, location)

    def report(event, outcome) -> None:
        colour = {"SUCCEEDED": "green", "DUPLICATE": "dim"}.get(outcome.status, "red")
        console.print(f"[{colour}]{outcome.status}[/] {outcome.run_id} s3://{event['detail']['bucket']['name']}/"
                      f"{event['detail']['object']['key']} {outcome.error or ''} {(outcome.cause or '')[:120]}")

    watcher = Watcher(get_settings(), declared, report)
    signal.signal(signal.SIGTERM, lambda *_: watcher.stop())
    bucket, key_prefix = watched_location(declared)
    console.print(f"watching s3://{bucket}/{key_prefix} for {declared.Name}; Ctrl-C to stop")
    try:
        watcher.run()
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
        tasks.stop_spark()


@workflow_app.command("start")
def start(
    uri: Annotated[str, typer.Argument(help="s3://bucket/key of the object")],
    path: WorkflowFile = str(workflow.WORKFLOW_FILE),
    version_id: Annotated[Optional[str], typer.Option(help="a version of the object (default: current)")] = None,
    table: Annotated[Optional[str], typer.Option(help="override the target table")] = None,
    location: Annotated[Optional[str], typer.Option(help="override the target table location")] = None,
) -> None:
    """Run the workflow once on an object, as if it had just been uploaded (no trigger dedup)."""
    from labs.lab_c import tasks  # pyspark: see `watch`

    try:
        outcome = start_for_object(get_settings(), workflow.load(path, None, table, location), uri, version_id)
    except (ClientError, BotoCoreError, ValueError) as exc:
        fail(describe_error(exc))
    finally:
        tasks.stop_spark()
    console.print(f"{outcome.status} {outcome.run_id} {outcome.error or ''} {outcome.cause or ''}")
    if outcome.status != "SUCCEEDED":
        raise typer.Exit(1)


@workflow_app.command("show")
def show_workflow(path: WorkflowFile = str(workflow.WORKFLOW_FILE)) -> None:
    """The states and transitions a workflow declares."""
    declared = workflow.load(path)
    table = Table("state", "type", "resource", "next", "retry", "catch", "timeout",
                  title=f"{declared.Name}: {declared.Comment}")
    for state_name, s in declared.States.items():
        nexts = [s.Next or ""] + [f"{c.get('Variable', '')} -> {c['Next']}" for c in s.Choices]
        nexts += [f"default -> {s.Default}"] if s.Default else []
        table.add_row(("* " if state_name == declared.StartAt else "") + state_name, s.Type, s.Resource or "",
                      "\n".join(n for n in nexts if n),
                      "\n".join(f"{r.ErrorEquals} x{r.MaxAttempts} {r.IntervalSeconds}s*{r.BackoffRate}" for r in s.Retry),
                      "\n".join(f"{c.ErrorEquals} -> {c.Next}" for c in s.Catch),
                      f"{s.TimeoutSeconds:g}s" if s.TimeoutSeconds else "")
    console.print(table)
    if declared.Trigger:
        console.print(f"trigger: {json.dumps(declared.Trigger.EventPattern)}")


runs_app = typer.Typer(help="Workflow runs and their state transitions (kept in PostgreSQL).")
app.add_typer(runs_app, name="runs")


@runs_app.callback(invoke_without_command=True)
def runs_list(
    ctx: typer.Context,
    status: Annotated[Optional[str], typer.Option(help="RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED")] = None,
    limit: Annotated[int, typer.Option()] = 20,
    workflow_name: Annotated[Optional[str], typer.Option("--workflow")] = None,
) -> None:
    """List runs, newest first (`lakelab lab-c runs show RUN_ID` for one run's transitions)."""
    if ctx.invoked_subcommand:
        return
    table = Table(Column("run", no_wrap=True, min_width=24), "status", "state", "object", "started", "s", "error",
                  caption="lakelab lab-c runs show RUN for the transitions")
    for r in list_runs(get_settings(), limit, status, workflow_name):
        colour = {"SUCCEEDED": "green", "RUNNING": "yellow"}.get(r.status, "red")
        obj = (r.trigger_key or "manual").split("@")[0]
        table.add_row(r.run_id, f"[{colour}]{r.status}[/]", r.current_state or "", obj,
                      r.started_at.strftime("%m-%d %H:%M:%S"), f"{r.duration_s:.1f}" if r.duration_s else "",
                      f"{r.error or ''} {(r.cause or '')[:80]}".strip())
    console.print(table)


@runs_app.command("show")
def runs_show(run_id: str) -> None:
    """One run: every state entered, retried, caught, exited, with timings."""
    run = get_run(run_id, get_settings())
    if run is None:
        fail(f"no run {run_id}")
    console.print(f"[bold]{run.run_id}[/] {run.workflow} {run.status} {run.error or ''} {run.cause or ''}")
    table = Table("at", "state", "event", "attempt", "detail")
    for e in run.events or []:
        table.add_row(e.at.strftime("%H:%M:%S.%f")[:-3], e.state or "", e.kind, str(e.attempt or ""),
                      json.dumps(e.detail, default=str)[:160] if e.detail is not None else "")
    console.print(table)


# ---------------------------------------------------------------- versions

versions_app = typer.Typer(help="Object versions of a versioned bucket: list, restore, undelete.", no_args_is_help=True)
app.add_typer(versions_app, name="versions")


@versions_app.command("list")
def versions_list(bucket: str, key: str, user: UserOption = None) -> None:
    """Every version and delete marker of a key, newest first."""
    try:
        versions = versioning.list_versions(get_client(get_settings(), user), bucket, key)
    except (ClientError, BotoCoreError, KeyError) as exc:
        fail(describe_error(exc, user))
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
    try:
        console.print(versioning.restore(get_client(get_settings(), user), bucket, key, version_id))
    except (ClientError, BotoCoreError, KeyError) as exc:
        fail(describe_error(exc, user))
    except LookupError as exc:
        fail(str(exc))


# ---------------------------------------------------------------- quality and catalog

quality_app = typer.Typer(help="Data quality reports (also run by the workflow after each ETL).", no_args_is_help=True)
app.add_typer(quality_app, name="quality")


@quality_app.command("check")
def quality_check(
    source: Annotated[str, typer.Argument(help="s3://bucket/key (CSV, JSON lines, Parquet) or a hive table name")],
    path: Annotated[str, typer.Option("--workflow", help="take schema and thresholds from this workflow file")] = str(
        workflow.WORKFLOW_FILE),
    save: Annotated[bool, typer.Option(help=f"store the report under s3://{LAB.processed_bucket}/_quality/")] = True,
    user: UserOption = None,
) -> None:
    """Profile a dataset on demand; exit 1 when it falls under the thresholds."""
    settings = get_settings()
    config, schema = workflow.quality_settings(workflow.load(path))
    try:
        data, dataset = quality.read_source(settings, source, schema, user)
    except (ClientError, BotoCoreError, KeyError, ValueError) as exc:
        fail(describe_error(exc, user))
    report = quality.profile(data, dataset, config, f"ondemand-{time.strftime('%Y%m%dT%H%M%S')}")
    console.print(quality.summary_table(report))
    if save:
        uris = quality.save(settings, report)
        console.print(f"report: {uris['json']}  {uris['html']}")
    if not report.passed:
        raise typer.Exit(1)


@quality_app.command("show")
def quality_show(ref: Annotated[str, typer.Argument(help="a run id or the s3:// URI of a report.json")],
                 user: UserOption = None) -> None:
    """Summarise a stored report."""
    settings = get_settings()
    uri = ref
    if not ref.startswith("s3://"):
        run = get_run(ref, settings)
        uri = ((run.output or {}).get("quality") or {}).get("report") if run else None
        if not uri:
            fail(f"run {ref} has no quality report")
    try:
        report = quality.load(settings, uri, get_client(settings, user))
    except (ClientError, BotoCoreError, KeyError) as exc:
        fail(describe_error(exc, user))
    console.print(quality.summary_table(report))
    console.print(f"html: {uri.removesuffix('.json')}.html")


@app.command()
def catalog(table: Annotated[str, typer.Argument(help="hive table")] = LAB.qualified_table) -> None:
    """Table metadata kept in the metastore: owner, source, last update, row count, quality."""
    properties = versioning.table_properties(get_settings(), table)
    if not properties:
        fail(f"no properties for {table}")
    out = Table("property", "value", title=table)
    for k, v in sorted(properties.items()):
        out.add_row(k, str(v)[:120])
    console.print(out)
