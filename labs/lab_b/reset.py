"""`lakelab lab-b reset` (and `lakelab reset-lab B`): Lab B back to its start, the other labs
untouched: the records of its trades and alerts topics, the raw and processed zones of its
dataset (with the Firehose's intent markers, the Lambda's manifests and dead letters), and its
crawled and processed tables. The consumers (Firehose, alerts) go on from the emptied topics'
ends. Stop `lakelab lab-b deliver`, `lambda` and `alerts` first."""

from __future__ import annotations

from typing import Annotated

import typer

from aws.firehose.delivery import DeliveryConfig
from labs.lab_b.check import ALERTS_PREFIX
from labs.probes import drop_table, empty_prefix, empty_topic
from labs.report import confirm_and_print
from lakelab.resources import resources
from lakelab.settings import Settings, get_settings

LAB = resources().labs.lab_b


def firehose_markers(topic: str, prefix: str) -> str:
    """Where the Firehose of `topic` into `prefix` keeps its intent markers."""
    config = DeliveryConfig(topic=topic, bucket=LAB.bucket, prefix=prefix, error_prefix="", buffer_bytes=0,
                            buffer_seconds=0)
    return f"_firehose/{config.group}/"


def reset(settings: Settings, topic: str = LAB.topic, alerts_topic: str = LAB.alerts_topic,
          dataset: str = LAB.dataset, raw_table: str = LAB.raw_table, processed_table: str = LAB.processed_table,
          alerts_prefix: str = ALERTS_PREFIX) -> list[str]:
    """What was removed, one line each."""
    removed = [f"topic {name}: {empty_topic(settings, name)} records" for name in (topic, alerts_topic)]
    alerts_dataset = alerts_prefix.removeprefix(LAB.raw_zone).strip("/")
    prefixes = [
        f"{LAB.raw_zone}{dataset}/", f"{LAB.raw_zone}{dataset}_errors/",
        f"{LAB.raw_zone}{alerts_dataset}/", f"{LAB.raw_zone}{alerts_dataset}_errors/",
        f"{LAB.processed_zone}{dataset}/", f"{LAB.processed_zone}{dataset}_errors/",
        f"{LAB.processed_zone}_manifests/{dataset}/",
        firehose_markers(topic, f"{LAB.raw_zone}{dataset}/"), firehose_markers(alerts_topic, alerts_prefix),
        f"_lambda_dlq/stockdata_lambda-{dataset}/",
    ]
    removed += [f"s3://{LAB.bucket}/{prefix}: {empty_prefix(settings, LAB.bucket, prefix)} objects"
                for prefix in prefixes]
    for table in (raw_table, processed_table, f"crawler_{alerts_dataset}"):
        removed.append(f"table {LAB.database}.{table}: "
                       f"{'dropped' if drop_table(settings, LAB.database, table) else 'none'}")
    return removed


def reset_command(yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False) -> None:
    """Lab B back to its start: its topics' records, raw and processed zones, tables."""
    confirm_and_print("Lab B", yes, lambda: reset(get_settings()))
