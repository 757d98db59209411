"""`lakelab lab-c check` (and `lakelab lab check C`): the parts of the course's Lab C (seed 001,
"Conception, Développement, et Exploitation d'un Data Lake", Parties 1-4) in their order, each done
or not yet, read from the stack: buckets and objects (with versions), the workflow's run history,
the processed table in Trino, the query API through Nginx, the quality reports."""

from __future__ import annotations

from typing import Annotated

import httpx
import typer

from aws.stepfunctions.runs import list_runs
from labs.lab_c.quality import QUALITY_PREFIX
from labs.probes import bucket_exists, object_count, trino_rows
from labs.report import Step, check_or_fail
from lakelab.resources import resources
from lakelab.settings import Settings, get_settings
from services.s3.client import get_client as s3_client

LAB = resources().labs.lab_c
OTHER_KINDS = ("events/", "logs/", "sql/")   # semi-structured, unstructured, SQL table exports
QUARANTINE = "quarantine/"


def versioned(settings: Settings, bucket: str) -> bool:
    return s3_client(settings).get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"


def keys_with_history(settings: Settings, bucket: str, prefix: str) -> int:
    """Keys under the prefix with more than one version or a delete marker."""
    page = s3_client(settings).list_object_versions(Bucket=bucket, Prefix=prefix, MaxKeys=1000)
    entries = [v["Key"] for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]]
    return sum(1 for key in set(entries) if entries.count(key) > 1)


def api_rows(settings: Settings, sql: str) -> int | None:
    """Rows the query API returns through the gateway (Nginx) for `sql`; None: an error answer."""
    try:
        response = httpx.get(f"{settings.gateway_url}/query", params={"query": sql}, timeout=30,
                             headers={"X-API-Key": settings.api_key_list[0]})
    except httpx.HTTPError:
        return None
    return len(response.json().get("results", [])) if response.status_code == 200 else None


def steps(settings: Settings, sales_prefix: str = f"{LAB.dataset}/", table: str = LAB.qualified_table,
          other_kinds: tuple[str, ...] = OTHER_KINDS) -> list[Step]:
    raw, processed = LAB.raw_bucket, LAB.processed_bucket
    database, _, name = table.rpartition(".")
    buckets_ok = all(bucket_exists(settings, b) and versioned(settings, b) for b in (raw, processed))
    kinds = {prefix: object_count(settings, raw, prefix, limit=10) for prefix in (sales_prefix, *other_kinds)}
    runs = list_runs(settings, limit=200, trigger_prefix=f"{raw}/{sales_prefix}")
    succeeded = [r for r in runs if r.status == "SUCCEEDED"]
    refused = [r for r in runs if r.status == "FAILED" and (r.error or "").startswith("ValidationFailed")]
    quarantined = object_count(settings, raw, f"{QUARANTINE}{sales_prefix}")
    totals = trino_rows(settings, f'SELECT location, sum(total_sales) FROM "{name}" GROUP BY location', database)
    served = api_rows(settings, f"SELECT location, sum(total_sales) AS total FROM hive.{table} GROUP BY location")
    history = keys_with_history(settings, raw, sales_prefix) if buckets_ok else 0
    reports = object_count(settings, processed, f"{QUALITY_PREFIX}/{table}/")
    upload = "lakelab lab-c ingest sales --user ingest" + (f" --prefix {sales_prefix.removesuffix(LAB.dataset + '/')}"
                                                           if sales_prefix != f"{LAB.dataset}/" else "")
    return [
        Step("Partie 1, Étape 1", "the raw and processed buckets (zones), versioned", buckets_ok,
             f"s3://{raw}, s3://{processed}: {'ok' if buckets_ok else 'missing or not versioned'}", "lakelab apply"),
        Step("Partie 2", "ingestion: structured, semi-structured and unstructured data in the raw zone",
             all(kinds.values()), ", ".join(f"{p} {n}" for p, n in kinds.items()),
             "lakelab lab-c ingest all --user ingest"),
        Step("Partie 2, Étapes 5-6", "EventBridge starts the state machine on an upload", bool(runs),
             f"{len(runs)} runs for s3://{raw}/{sales_prefix}",
             f"lakelab lab-c workflow watch (running), then {upload}"),
        Step("Partie 2, Étape 4", "the ETL job writes Parquet, Athena sums Total_Sales by location",
             bool(succeeded) and bool(totals), f"{len(succeeded)} SUCCEEDED runs, "
             + (f"{len(totals)} locations in {table}" if totals is not None else f"no table {table}"),
             "lakelab lab-c runs (why a run failed: lakelab lab-c runs show RUN_ID)"),
        Step("Partie 2, Étape 3", "a different schema takes the failure branch (quarantine)",
             bool(refused) and quarantined > 0, f"{len(refused)} ValidationFailed runs, {quarantined} quarantined files",
             upload.replace("ingest sales", "ingest sales-different-schema")),
        Step("Partie 3", "the query API answers GET /query?query=SELECT ... through Nginx", bool(served),
             f"{served} rows" if served is not None else "no answer (table missing or API down)",
             f"""curl -G {settings.gateway_url}/query -H "X-API-Key: $KEY" --data-urlencode """
             f""""query=SELECT location, sum(total_sales) FROM hive.{table} GROUP BY location\""""),
        Step("Partie 4, Versioning", "an overwritten or deleted file keeps its versions", history > 0,
             f"{history} keys with several versions under s3://{raw}/{sales_prefix}",
             f"{upload} --rows 150 (overwrites), then lakelab lab-c versions list {raw} "
             f"{sales_prefix}sales_data_london.csv"),
        Step("Partie 4, Qualité", "a data-quality report with its key figures", reports > 0,
             f"{reports} report files under s3://{processed}/{QUALITY_PREFIX}/{table}/",
             "lakelab lab-c quality show RUN_ID (a run's report), or lakelab lab-c quality check " + table),
    ]


def check(table: Annotated[str, typer.Option(help="the processed table")] = LAB.qualified_table) -> None:
    """Which parts of Lab C are done, read from the stack; the hint for the next one."""
    check_or_fail("Lab C (seed 001): the company data lake", lambda: steps(get_settings(), table=table))
