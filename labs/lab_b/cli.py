"""`lakelab lab-b ...`: near-real-time crypto trades, one command per piece of the lab.

    lakelab lab-b sample                       # write a sample trades CSV
    lakelab lab-b replay FILE --batch 100      # generator -> topic stockdata
    lakelab lab-b deliver                      # Firehose: stockdata -> raw-zone/stockdata/ (long-running)
    lakelab lab-b lambda                       # S3 events on raw-zone/ -> Parquet in processed-zone/ (long-running)
    lakelab lab-b crawl                        # Glue crawler on raw-zone/stockdata/
    lakelab sql trino/queries/lab_b.sql        # Athena queries and DDL
    lakelab lab-b backfill                     # convert raw files that predate the trigger
    lakelab lab-b reconcile                    # per symbol and hour: raw == processed
    lakelab lab-b alerts                       # Kinesis Analytics: stockdata -> alerts (long-running)
    lakelab lab-b deliver --topic alerts --prefix raw-zone/alerts/
    lakelab lab-b check                        # which exercises are done, the hint for the next
    lakelab lab-b reset                        # the lab back to its start (topics, zones, tables)
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Optional

import typer
from rich.progress import track
from rich.table import Table

from aws.firehose.delivery import DeliveryConfig, run_until_signalled
from aws.glue.crawler import CrawlError, crawl
from labs.lab_b import alerts as trade_alerts
from labs.lab_b.check import check
from labs.lab_b.lambda_runtime import Checkpoint, Invoker, backfill_records, watch_meta_tail
from labs.lab_b.reconcile import reconcile_counts
from labs.lab_b.reset import reset_command
from labs.lab_b.stockdata_lambda import handler_for
from lakelab.console import err_console as console
from lakelab.console import fail, setup_logging
from lakelab.resources import resources
from lakelab.settings import get_settings
from producers.lab_b import replay_command, sample_command

LAB = resources().labs.lab_b
TRADE_FIELDS = "transaction_ts,symbol,price,amount,dollar_amount,type,trans_id"
Datasets = Annotated[str, typer.Option(help="datasets the Lambda converts, comma separated (its SOURCE_DATASETS)")]

app = typer.Typer(help="Lab B: replay, delivery (Firehose), Lambda, crawler, reconciliation, real-time alerts.",
                  no_args_is_help=True)
app.command("sample")(sample_command)
app.command("replay")(replay_command)
app.command("check")(check)
app.command("reset")(reset_command)


@app.command()
def deliver(
    topic: Annotated[str, typer.Option(help="topic to deliver")] = LAB.topic,
    prefix: Annotated[str, typer.Option(help="data prefix in the bucket")] = LAB.raw_prefix,
    error_prefix: Annotated[str, typer.Option(help="error prefix (default: PREFIX without / + _errors/)")] = "",
    bucket: Annotated[str, typer.Option()] = LAB.bucket,
    buffer_bytes: Annotated[int, typer.Option(help="flush at this size (default: settings)")] = 0,
    buffer_seconds: Annotated[float, typer.Option(help="or this age (default: settings)")] = 0.0,
    require: Annotated[str, typer.Option(help="comma-separated fields a record must have ('' = none)")] = TRADE_FIELDS,
    idle_exit: Annotated[float, typer.Option(help="flush and exit after this many idle seconds (0 = never)")] = 0.0,
) -> None:
    """Firehose stand-in: topic -> NDJSON objects under PREFIX/year=/month=/day=/hour=/ (arrival time)."""
    setup_logging()
    settings = get_settings()
    config = DeliveryConfig.declared(settings, topic, bucket, prefix, error_prefix, buffer_bytes, buffer_seconds,
                                     required_fields=tuple(f.strip() for f in require.split(",") if f.strip()))
    console.print(f"delivering {topic} -> s3://{bucket}/{config.prefix} (errors: {config.error_prefix}), "
                  f"flush at {config.buffer_bytes} bytes or {config.buffer_seconds:g} s; group {config.group}")
    stats = run_until_signalled(settings, config, idle_exit or None)
    console.print(f"delivered {stats.records} records and {stats.errors} errors in {len(stats.objects)} objects")


@app.command("lambda")
def lambda_command(
    bucket: Annotated[str, typer.Option()] = LAB.bucket,
    prefix: Annotated[str, typer.Option(help="trigger prefix (filter_prefix)")] = LAB.raw_zone,
    datasets: Datasets = LAB.dataset,
    name: Annotated[str, typer.Option(help="function name (checkpoint, dead-letter folder)")] = "",
) -> None:
    """Run the Lambda on every object created under s3://BUCKET/PREFIX (long-running)."""
    setup_logging()
    settings = get_settings()
    function = name or f"stockdata_lambda-{datasets.replace(',', '-')}"
    invoke = Invoker(settings, handler_for(datasets.split(",")), function, bucket)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    checkpoint = Checkpoint(settings.state_dir / "events" / f"{function}.json")
    console.print(f"{function}: watching s3://{bucket}/{prefix} through the S3 server's event stream "
                  f"({'from checkpoint' if checkpoint.ts_ns else 'from now'})")
    watch_meta_tail(settings, invoke, bucket, prefix, checkpoint, stop)


@app.command()
def backfill(
    prefix: Annotated[str, typer.Option(help="objects to convert")] = LAB.raw_prefix,
    bucket: Annotated[str, typer.Option()] = LAB.bucket,
    datasets: Datasets = LAB.dataset,
) -> None:
    """Invoke the Lambda for objects that existed before the trigger (idempotent: done ones are skipped)."""
    setup_logging()
    settings = get_settings()
    invoke = Invoker(settings, handler_for(datasets.split(",")), "backfill", bucket)
    records = list(backfill_records(settings, bucket, prefix))
    results = [invoke(r) for r in track(records, description="backfill", console=console)]
    done = [r for r in results if isinstance(r, dict)]
    console.print(f"{len(records)} objects: {sum(1 for r in done if r.get('skipped'))} already processed, "
                  f"{sum(1 for r in done if r.get('new_keys') and not r.get('skipped'))} converted, "
                  f"{sum(1 for r in done if r.get('ignored'))} ignored, {invoke.failures} failed")
    if invoke.failures:
        raise typer.Exit(1)


@app.command("crawl")
def crawl_command(
    location: Annotated[str, typer.Argument(help="s3://bucket/prefix/ of one table")] = f"s3://{LAB.bucket}/{LAB.raw_prefix}",
    database: Annotated[str, typer.Option()] = LAB.database,
    table_prefix: Annotated[str, typer.Option(help="prepended to the folder name")] = "crawler_",
    table: Annotated[str, typer.Option(help="table name (default: prefix + folder name)")] = "",
    columns: Annotated[str, typer.Option(help="CSV: comma-separated column names (default: the header's, "
                                              "else col0, col1...)")] = "",
    header: Annotated[Optional[bool], typer.Option("--header/--no-header",
                                                  help="CSV: whether the files start with a header (default: detect)")] = None,
) -> None:
    """Glue crawler stand-in: infer the schema and partitions under LOCATION and register the table."""
    try:
        result = crawl(get_settings(), location, database, table_prefix, table or None, csv_header=header,
                       csv_columns=[c.strip() for c in columns.split(",") if c.strip()])
    except CrawlError as exc:
        fail(str(exc))
    grid = Table("column", "type", title=f"{database}.{result.table} ({result.format}, {result.location})")
    for column, kind in result.columns:
        grid.add_row(column + (" [green](new)" if column in result.added_columns else ""), kind)
    for key in result.partition_keys:
        grid.add_row(f"{key} [dim](partition)", "varchar")
    console.print(grid)
    console.print(f"[bold]{result.action}[/]: {result.files} files, partitions {result.partitions_before} -> "
                  f"{result.partitions_after}")
    for line in [*result.type_conflicts, *result.skipped]:
        console.print(f"[yellow]warning:[/] {line}")


@app.command()
def reconcile(
    raw_table: Annotated[str, typer.Option(help="the crawled raw-zone table")] = LAB.raw_table,
    processed_table: Annotated[str, typer.Option(help="the processed-zone table")] = LAB.processed_table,
    database: Annotated[str, typer.Option()] = LAB.database,
) -> None:
    """Counts per symbol and event hour in the raw and processed zones; exit 1 when they differ."""
    rows = reconcile_counts(get_settings(), raw_table, processed_table, database)
    grid = Table("symbol", "hour (UTC)", "raw", "processed", "", title=f"{database}: {raw_table} vs {processed_table}")
    for symbol, hour, raw, processed in rows:
        grid.add_row(symbol, hour, str(raw), str(processed), "[green]ok" if raw == processed else "[red]differs")
    console.print(grid)
    differing = [r for r in rows if r[2] != r[3]]
    console.print(f"{len(rows)} symbol-hours, {len(differing)} differ")
    if differing:
        raise typer.Exit(1)


@app.command()
def alerts(
    source_topic: Annotated[str, typer.Option(help="trades topic")] = LAB.topic,
    alerts_topic: Annotated[str, typer.Option(help="alerts topic")] = LAB.alerts_topic,
    window_seconds: Annotated[int, typer.Option(help="event-time window")] = 30,
    factor: Annotated[float, typer.Option(help="alert when dollar_amount > factor x window average")] = 4.0,
    symbols: Annotated[str, typer.Option(help="comma-separated symbols to watch ('' = all; the lab: BTC_USD)")] = "",
    webhook: Annotated[str, typer.Option(help="POST each alert here (default: settings)")] = "",
) -> None:
    """Kinesis Analytics stand-in: flag outsized trades per (symbol, type) in real time (long-running)."""
    setup_logging()
    settings = get_settings()
    config = trade_alerts.AlertConfig(source_topic, alerts_topic, window_seconds, factor,
                                      symbols=tuple(s.strip() for s in symbols.split(",") if s.strip()),
                                      webhook=webhook or settings.alert_webhook)
    console.print(f"watching {source_topic}: dollar_amount > {factor:g} x avg of the previous {window_seconds} s "
                  f"per (symbol, type) -> {alerts_topic}")
    counts = trade_alerts.run_until_signalled(settings, config)
    console.print(f"{counts['trades']} trades, {counts['alerts']} alerts, {counts['rejected']} rejected")
