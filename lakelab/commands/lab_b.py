"""`lakelab lab-b ...`: the pieces of Lab B (near-real-time crypto trades), one command each.

    lakelab lab-b sample                       # write a sample trades CSV
    lakelab lab-b replay FILE --batch 100      # generator -> topic stockdata
    lakelab lab-b deliver                      # Firehose: stockdata -> raw-zone/stockdata/ (long-running)
    lakelab lab-b lambda                       # S3 events on raw-zone/ -> Parquet in processed-zone/ (long-running)
    lakelab lab-b crawl s3://datalake/raw-zone/stockdata/
    lakelab sql trino/queries/lab_b.sql        # Athena queries and DDL
    lakelab lab-b backfill                     # convert raw files that predate the trigger
    lakelab lab-b reconcile                    # per symbol and hour: raw == processed
    lakelab lab-b alerts                       # Kinesis Analytics: stockdata -> alerts (long-running)
    lakelab lab-b deliver --topic alerts --prefix raw-zone/alerts/
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lakelab.settings import Settings, get_settings
from producers.trades import replay_command, sample_command

TRADE_FIELDS = "transaction_ts,symbol,price,amount,dollar_amount,type,trans_id"
console = Console(stderr=True)
app = typer.Typer(help="Lab B: replay, delivery (Firehose), Lambda, crawler, reconciliation, real-time alerts.",
                  no_args_is_help=True)


def _logging() -> None:
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=console, show_path=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for noisy in ("botocore", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


app.command("sample")(sample_command)
app.command("replay")(replay_command)


@app.command()
def deliver(
    topic: Annotated[str, typer.Option(help="topic to deliver")] = "stockdata",
    prefix: Annotated[str, typer.Option(help="data prefix in the bucket")] = "raw-zone/stockdata/",
    error_prefix: Annotated[str, typer.Option(help="error prefix (default: PREFIX without / + _errors/)")] = "",
    bucket: Annotated[str, typer.Option()] = "datalake",
    buffer_bytes: Annotated[int, typer.Option(envvar="LAKELAB_FIREHOSE_BUFFER_BYTES", help="flush at this size")] = 1_048_576,
    buffer_seconds: Annotated[float, typer.Option(envvar="LAKELAB_FIREHOSE_BUFFER_SECONDS", help="or this age")] = 60.0,
    require: Annotated[str, typer.Option(help="comma-separated fields a record must have ('' = none)")] = TRADE_FIELDS,
    idle_exit: Annotated[float, typer.Option(help="flush and exit after this many idle seconds (0 = never)")] = 0.0,
) -> None:
    """Firehose stand-in: topic -> NDJSON objects under PREFIX/year=/month=/day=/hour=/ (arrival time)."""
    from delivery.firehose import DeliveryConfig, run_until_signalled

    _logging()
    prefix = prefix.rstrip("/") + "/"
    config = DeliveryConfig(topic=topic, prefix=prefix, error_prefix=error_prefix or prefix.rstrip("/") + "_errors/",
                            bucket=bucket, buffer_bytes=buffer_bytes, buffer_seconds=buffer_seconds,
                            required_fields=tuple(f.strip() for f in require.split(",") if f.strip()))
    console.print(f"delivering {topic} -> s3://{bucket}/{config.prefix} (errors: {config.error_prefix}), "
                  f"flush at {buffer_bytes} bytes or {buffer_seconds:g} s; group {config.group}")
    stats = run_until_signalled(get_settings(), config, idle_exit or None)
    console.print(f"delivered {stats.records} records and {stats.errors} errors in {len(stats.objects)} objects")


@app.command("lambda")
def lambda_command(
    source: Annotated[str, typer.Option(help="meta-tail (SeaweedFS filer events; native default) or webhook "
                                              "(MinIO notifications, SeaweedFS webhook; compose default)")] = "",
    bucket: Annotated[str, typer.Option()] = "datalake",
    prefix: Annotated[str, typer.Option(help="trigger prefix (filter_prefix)")] = "raw-zone/",
    datasets: Annotated[str, typer.Option(help="SOURCE_DATASETS of the handler")] = "stockdata",
    handler: Annotated[str, typer.Option(help="module:function")] = "lambdas.stockdata_etl:handler",
    host: Annotated[str, typer.Option(help="webhook: listen address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="webhook: port")] = 9010,
    name: Annotated[str, typer.Option(help="function name (checkpoint, dead-letter folder)")] = "",
) -> None:
    """Run the Lambda on every object created under s3://BUCKET/PREFIX (long-running)."""
    from lakelab import s3events

    _logging()
    os.environ["SOURCE_DATASETS"] = datasets
    settings = get_settings()
    source = source or ("webhook" if settings.mode == "compose" else "meta-tail")
    function = name or f"{handler.rsplit(':', 1)[0].rsplit('.', 1)[-1]}-{datasets.replace(',', '-')}"
    invoke = s3events.Invoker(settings, s3events.load_handler(handler), function, bucket)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if source == "webhook":
        server = s3events.serve_webhook(settings, invoke, host, port, prefix)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        console.print(f"{function}: POST S3/MinIO/SeaweedFS events to http://{host}:{port}/ (prefix {prefix})")
        stop.wait()
        server.shutdown()
        return
    if source != "meta-tail":
        _fail(f"unknown --source {source!r}: meta-tail or webhook")
    checkpoint = s3events.Checkpoint(settings.state_dir / "events" / f"{function}.json")
    console.print(f"{function}: watching s3://{bucket}/{prefix} through `weed filer.meta.tail` "
                  f"({'from checkpoint' if checkpoint.ts_ns else 'from now'}); handler {handler}")
    s3events.watch_meta_tail(settings, invoke, bucket, prefix, checkpoint, stop)


@app.command()
def backfill(
    prefix: Annotated[str, typer.Option(help="objects to convert")] = "raw-zone/stockdata/",
    bucket: Annotated[str, typer.Option()] = "datalake",
    datasets: Annotated[str, typer.Option(help="SOURCE_DATASETS of the handler")] = "stockdata",
    handler: Annotated[str, typer.Option(help="module:function")] = "lambdas.stockdata_etl:handler",
) -> None:
    """Invoke the Lambda for objects that existed before the trigger (idempotent: done ones are skipped)."""
    from rich.progress import track

    from lakelab import s3events

    _logging()
    os.environ["SOURCE_DATASETS"] = datasets
    settings = get_settings()
    invoke = s3events.Invoker(settings, s3events.load_handler(handler), "backfill", bucket)
    records = list(s3events.backfill_records(settings, bucket, prefix))
    results = [invoke(r) for r in track(records, description="backfill", console=console)]
    done = [r for r in results if isinstance(r, dict)]
    console.print(f"{len(records)} objects: {sum(1 for r in done if r.get('skipped'))} already processed, "
                  f"{sum(1 for r in done if r.get('new_keys') and not r.get('skipped'))} converted, "
                  f"{sum(1 for r in done if r.get('ignored'))} ignored, {invoke.failures} failed")
    if invoke.failures:
        raise typer.Exit(1)


@app.command()
def crawl(
    location: Annotated[str, typer.Argument(help="s3://bucket/prefix/ of one table")] = "s3://datalake/raw-zone/stockdata/",
    database: Annotated[str, typer.Option()] = "lab_b",
    table_prefix: Annotated[str, typer.Option(help="prepended to the folder name")] = "crawler_",
    table: Annotated[str, typer.Option(help="table name (default: prefix + folder name)")] = "",
) -> None:
    """Glue crawler stand-in: infer the schema and partitions under LOCATION and register the table."""
    from catalog.crawler import CrawlError
    from catalog.crawler import crawl as run_crawl

    try:
        result = run_crawl(get_settings(), location, database, table_prefix, table or None)
    except CrawlError as exc:
        _fail(str(exc))
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


RECONCILE_SQL = """
-- name: raw
SELECT symbol, date_format(from_unixtime(transaction_ts), '%Y-%m-%dT%H') AS hour, count(*) AS n
FROM "${raw_table}" GROUP BY 1, 2;
-- name: processed
SELECT symbol, format('%04d-%02d-%02dT%02d', year, month, day, hour) AS hour, count(*) AS n
FROM "${processed_table}" GROUP BY 1, 2
"""


def reconcile_counts(settings: Settings, raw_table: str, processed_table: str, database: str = "lab_b",
                     sync: bool = True) -> list[tuple[str, str, int, int]]:
    """(symbol, hour, raw count, processed count) for every symbol and event hour of either zone."""
    from lakelab import athena
    from services.trino.service import query

    if sync:
        for table in (raw_table, processed_table):
            query(settings, f"CALL hive.system.sync_partition_metadata('{database}', '{table}', 'FULL')")
    raw, processed = athena.run(settings, RECONCILE_SQL, database,
                                {"raw_table": raw_table, "processed_table": processed_table})
    counts_raw = {(s, h): n for s, h, n in raw.rows}
    counts_processed = {(s, h): n for s, h, n in processed.rows}
    return [(s, h, counts_raw.get((s, h), 0), counts_processed.get((s, h), 0))
            for s, h in sorted(counts_raw.keys() | counts_processed.keys())]


@app.command()
def reconcile(
    raw_table: Annotated[str, typer.Option(help="the crawled raw-zone table")] = "crawler_stockdata",
    processed_table: Annotated[str, typer.Option(help="the processed-zone table")] = "processed_stockdata",
    database: Annotated[str, typer.Option()] = "lab_b",
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
    source_topic: Annotated[str, typer.Option(help="trades topic")] = "stockdata",
    alerts_topic: Annotated[str, typer.Option(help="alerts topic")] = "alerts",
    window_seconds: Annotated[int, typer.Option(help="event-time window")] = 30,
    factor: Annotated[float, typer.Option(help="alert when dollar_amount > factor x window average")] = 4.0,
    symbols: Annotated[str, typer.Option(help="comma-separated symbols to watch ('' = all; the lab: BTC_USD)")] = "",
    webhook: Annotated[str, typer.Option(envvar="LAKELAB_ALERT_WEBHOOK", help="POST each alert here")] = "",
) -> None:
    """Kinesis Analytics stand-in: flag outsized trades per (symbol, type) in real time (long-running)."""
    from analytics.trade_alerts import AlertConfig, run_until_signalled

    _logging()
    config = AlertConfig(source_topic, alerts_topic, window_seconds, factor,
                         symbols=tuple(s.strip() for s in symbols.split(",") if s.strip()), webhook=webhook)
    console.print(f"watching {source_topic}: dollar_amount > {factor:g} x avg of the previous {window_seconds} s "
                  f"per (symbol, type) -> {alerts_topic}")
    counts = run_until_signalled(get_settings(), config)
    console.print(f"{counts['trades']} trades, {counts['alerts']} alerts, {counts['rejected']} rejected")


def sql_command(
    file: Annotated[str, typer.Argument(help="SQL file, or - for standard input")],
    schema: Annotated[str, typer.Option(help="default schema of the hive catalog")] = "lab_b",
    var: Annotated[list[str], typer.Option(help="NAME=VALUE for ${NAME} in the file")] = [],  # noqa: B006
    name: Annotated[list[str], typer.Option(help="run only the statements of these names")] = [],  # noqa: B006
    dry_run: Annotated[bool, typer.Option(help="print the Trino statements, do not run them")] = False,
) -> None:
    """Run Athena / Hive SQL on Trino: CREATE EXTERNAL TABLE, MSCK REPAIR TABLE and SHOW PARTITIONS
    are translated, the rest runs as is (see docs/lab_b.md)."""
    from trino.exceptions import TrinoQueryError

    from lakelab import athena

    text = sys.stdin.read() if file == "-" else Path(file).read_text()
    variables = dict(v.split("=", 1) for v in var if "=" in v)
    try:
        statements = athena.run(get_settings(), text, schema, variables, name or None, execute=not dry_run)
    except (athena.TranslationError, TrinoQueryError) as exc:
        _fail(str(exc))
    for statement in statements:
        title = statement.name or statement.sql.split("\n", 1)[0][:60]
        if statement.translated != statement.sql or dry_run:
            console.print(f"[dim]-- {title}: runs as[/]\n{statement.translated}")
        for note in statement.notes:
            console.print(f"[yellow]note:[/] {note}")
        if statement.columns and not dry_run:
            grid = Table(*statement.columns, title=title)
            for row in statement.rows:
                grid.add_row(*("NULL" if v is None else str(v) for v in row))
            Console(width=None if sys.stdout.isatty() else 250).print(grid)
