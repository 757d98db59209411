"""`lakelab lab-c stream ...`: the company lab's Kinesis part. The course sends a CSV line per
record from the Kinesis Data Generator to a stream; here it lands in the raw bucket and is crawled.

    lakelab lab-c stream send --rate 10 --count 500   # KDG: producers/templates/company_people.csv -> company-stream
    lakelab lab-c stream deliver --idle-exit 10      # Firehose: the stream -> s3://raw/stream/people/ (CSV lines)
    lakelab lab-c stream crawl                       # Glue crawler -> default.crawler_people

The dashboard's KDG page (/dashboard/kdg.html) sends the same template from a browser.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from aws.firehose.delivery import DeliveryConfig, run_until_signalled
from aws.glue.crawler import CrawlError, crawl
from lakelab.console import console, fail, setup_logging
from lakelab.resources import resources
from lakelab.settings import get_settings
from producers.kdg import Generator
from producers.templates import TemplateError

LAB = resources().labs.lab_c
TEMPLATE = "company_people"
# The company template's fields, in order: {{name.firstName}},{{name.lastName}},{{random.number(70)}},{{internet.ip}}
COLUMNS = ("first_name", "last_name", "age", "ip")

app = typer.Typer(help="The lab's KDG stream: send CSV lines, deliver them to the raw bucket, crawl them.",
                  no_args_is_help=True)


@app.command()
def send(
    template: Annotated[str, typer.Option(help="template name in producers/templates, or a path")] = TEMPLATE,
    topic: Annotated[str, typer.Option(help="Kafka topic (the Kinesis stream)")] = LAB.stream_topic,
    rate: Annotated[float, typer.Option(help="records per second (0 = as fast as possible)")] = 10.0,
    count: Annotated[Optional[int], typer.Option(help="stop after this many records (default: Ctrl-C)")] = None,
) -> None:
    """The Kinesis Data Generator: records rendered from the template, sent as they render."""
    try:
        generator = Generator(get_settings().kafka_bootstrap, topic=topic, profile=template, rate=rate)
    except TemplateError as exc:
        fail(f"template error: {exc}")
    console.print(f"sending {generator.template.format} records of [bold]{generator.profile}[/] to {topic} at "
                  f"{rate or 'max'} rec/s; Ctrl-C stops")
    try:
        stats = generator.run(count=count)
    except KeyboardInterrupt:
        stats = generator.stats
    generator.close()
    console.print(f"sent {stats.sent} records in {stats.elapsed:.1f} s; errors {stats.errors}")
    if stats.errors:
        fail(f"last error: {stats.last_error}")


@app.command()
def deliver(
    topic: Annotated[str, typer.Option(help="topic to deliver")] = LAB.stream_topic,
    bucket: Annotated[str, typer.Option()] = LAB.raw_bucket,
    prefix: Annotated[str, typer.Option(help="data prefix in the bucket")] = LAB.stream_prefix,
    error_prefix: Annotated[str, typer.Option(help="error prefix (default: PREFIX without / + _errors/)")] = "",
    fields: Annotated[int, typer.Option(help="fields a CSV line must have (0 = any)")] = len(COLUMNS),
    buffer_bytes: Annotated[int, typer.Option(help="flush at this size (default: settings)")] = 0,
    buffer_seconds: Annotated[float, typer.Option(help="or this age (default: settings)")] = 0.0,
    idle_exit: Annotated[float, typer.Option(help="flush and exit after this many idle seconds (0 = never)")] = 0.0,
) -> None:
    """Firehose stand-in for CSV records: each record one line of PREFIX/year=/month=/day=/hour=/*.csv."""
    setup_logging()
    settings = get_settings()
    config = DeliveryConfig.declared(settings, topic, bucket, prefix, error_prefix, buffer_bytes, buffer_seconds,
                                     record_format="csv", csv_fields=fields)
    console.print(f"delivering {topic} -> s3://{bucket}/{config.prefix} as CSV lines (errors: {config.error_prefix}), "
                  f"flush at {config.buffer_bytes} bytes or {config.buffer_seconds:g} s")
    stats = run_until_signalled(settings, config, idle_exit or None)
    console.print(f"delivered {stats.records} records and {stats.errors} errors in {len(stats.objects)} objects")


@app.command("crawl")
def crawl_command(
    location: Annotated[str, typer.Argument(help="s3://bucket/prefix/ of one table")] =
        f"s3://{LAB.raw_bucket}/{LAB.stream_prefix}",
    database: Annotated[str, typer.Option()] = LAB.database,
    table: Annotated[str, typer.Option(help="table name")] = LAB.stream_table,
    columns: Annotated[str, typer.Option(help="comma-separated column names ('' = the header's, else col0, col1...)")]
        = ",".join(COLUMNS),
    header: Annotated[Optional[bool], typer.Option("--header/--no-header",
                                                  help="whether the files start with a header (default: detect)")] = None,
) -> None:
    """Glue crawler stand-in: register the CSV lines under LOCATION as a table with its partitions."""
    names = [c.strip() for c in columns.split(",") if c.strip()]
    try:
        result = crawl(get_settings(), location, database, table=table, csv_header=header, csv_columns=names)
    except CrawlError as exc:
        fail(str(exc))
    grid = Table("column", "type", title=f"{database}.{result.table} ({result.format}, {result.location})")
    for column, kind in result.columns:
        grid.add_row(column, kind)
    for key in result.partition_keys:
        grid.add_row(f"{key} [dim](partition)", "varchar")
    console.print(grid)
    console.print(f"[bold]{result.action}[/]: {result.files} files, partitions {result.partitions_before} -> "
                  f"{result.partitions_after}")
