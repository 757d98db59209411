"""The tasks (the Lambda functions / Glue job of the lab) that `labs/lab_c/sales_etl.yaml` names
as `Resource: labs.lab_c.tasks:<function>`. Each takes the state's effective input and a
`Context`, and returns a JSON-able result; errors carry a States-style name for Retry/Catch."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
from datetime import date, datetime, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from aws.stepfunctions import runs
from aws.stepfunctions.engine import Context, WorkflowError
from labs.lab_c import quality
from lakelab.settings import Settings, get_settings
from services.s3.client import get_client
from services.spark.client import get_session
from spark_jobs import lab_c as sales_etl

_spark = None
_spark_lock = threading.Lock()


def spark_session(settings: Settings | None = None):
    """One SparkSession per process, started on first use (the JVM costs seconds), reused by
    every run of the watcher."""
    global _spark
    with _spark_lock:
        if _spark is None:
            _spark = get_session(settings or get_settings(), "lab_c-workflow", {
                "spark.driver.memory": "1g", "spark.sql.shuffle.partitions": "1",
                "spark.sql.sources.partitionOverwriteMode": "static",
            })
        return _spark


def stop_spark() -> None:
    global _spark
    with _spark_lock:
        if _spark is not None:
            _spark.stop()
            _spark = None


def _s3_error(exc: Exception, what: str) -> WorkflowError:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "NoSuchVersion", "404"):
            return WorkflowError("S3.NoSuchKey", f"{what}: {code}")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if status < 500:
            return WorkflowError(f"S3.{code or status}", f"{what}: {exc}")
    return WorkflowError("S3.Unavailable", f"{what}: {exc}")


def read_object(settings: Settings, bucket: str, key: str, version_id: str | None) -> bytes:
    try:
        args = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
        return get_client(settings).get_object(**args)["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        raise _s3_error(exc, f"s3://{bucket}/{key}") from exc


# ---------------------------------------------------------------- Validate


def _parses(value: str, kind: str) -> bool:
    try:
        {"int": int, "double": float, "string": str, "date": date.fromisoformat,
         "bool": lambda v: {"true": 1, "false": 0}[v.lower()]}[kind](value)
        return True
    except (ValueError, KeyError):
        return False


def validate_csv(body: bytes, expected: dict[str, str]) -> dict[str, Any]:
    """Is it a CSV with a header, do the rows have the header's width, are the expected
    columns there, and does every non-empty value of a typed column parse as its type?"""
    errors: list[str] = []
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return {"valid": False, "errors": [f"not UTF-8 text: {exc.reason} at byte {exc.start}"], "rows": 0, "columns": []}
    if "\x00" in text:
        return {"valid": False, "errors": ["binary content, not CSV"], "rows": 0, "columns": []}
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    if len(header) < 2:
        return {"valid": False, "errors": ["no CSV header (fewer than 2 columns)"], "rows": 0, "columns": header}
    missing = [c for c in expected if c not in header]
    if missing:
        errors.append(f"missing columns: {', '.join(missing)}")
    positions = {c: header.index(c) for c in expected if c in header}
    bad: dict[str, list[str]] = {}
    ragged, rows = 0, 0
    for row in reader:
        if not row:
            continue
        rows += 1
        if len(row) != len(header):
            ragged += 1
            continue
        for column, index in positions.items():
            value = row[index].strip()
            if value and not _parses(value, expected[column]):
                bad.setdefault(column, []).append(value)
    if ragged:
        errors.append(f"{ragged} rows do not have the header's {len(header)} fields")
    for column, values in bad.items():
        errors.append(f"{column}: {len(values)} values are not {expected[column]} (e.g. {values[0]!r})")
    if rows == 0:
        errors.append("no data rows")
    return {"valid": not errors, "errors": errors, "rows": rows, "columns": header}


def validate(payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    settings = ctx.settings or get_settings()
    body = read_object(settings, payload["bucket"], payload["key"], payload.get("version_id"))
    result = validate_csv(body, payload["expected_columns"])
    return {**result, "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}


# ---------------------------------------------------------------- CheckDuplicate


def check_duplicate(payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Is this content what the table already holds for this key, or for another key?"""
    uri = f"s3://{payload['bucket']}/{payload['key']}"
    mine = sales_etl.source_id(uri)
    held = runs.processed_content(payload["table"], ctx.settings)
    same = [u for sid, (sha, u) in held.items() if sha == payload["sha256"]]
    return {"duplicate": bool(same), "same_as": same[0] if same else None, "source_id": mine,
            "replaces": held[mine][1] if mine in held and not same else None}


# ---------------------------------------------------------------- Quarantine


def quarantine(payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Copies the object version to `<prefix><key>` and writes `<prefix><key>.reason.json`."""
    settings = ctx.settings or get_settings()
    s3 = get_client(settings)
    bucket, key, version = payload["bucket"], payload["key"], payload.get("version_id")
    reason = payload.get("reason") or {}
    cause = reason.get("Cause")
    cause_text = "; ".join(cause) if isinstance(cause, list) else str(cause or "")
    target = f"{payload.get('prefix', 'quarantine/')}{key}"
    document = {"run_id": ctx.run_id, "source": f"s3://{bucket}/{key}", "version_id": version,
                "error": reason.get("Error", "Unknown"), "cause": cause, "quarantined_at": datetime.now(timezone.utc).isoformat()}
    try:
        source = {"Bucket": bucket, "Key": key, **({"VersionId": version} if version else {})}
        s3.copy_object(Bucket=bucket, Key=target, CopySource=source, MetadataDirective="REPLACE",
                       Metadata={"lakelab-run-id": ctx.run_id, "lakelab-error": document["error"]})
        s3.put_object(Bucket=bucket, Key=f"{target}.reason.json", Body=json.dumps(document, indent=2).encode(),
                      ContentType="application/json")
    except (ClientError, BotoCoreError) as exc:
        raise _s3_error(exc, f"quarantine of s3://{bucket}/{key}") from exc
    return {"object": f"s3://{bucket}/{target}", "reason": f"s3://{bucket}/{target}.reason.json",
            "error": document["error"], "cause": cause_text}


# ---------------------------------------------------------------- ETL


def etl(payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """The Spark batch job on the validated version; refuses to run if the key moved on since
    (a newer version has its own event and run)."""
    settings = ctx.settings or get_settings()
    bucket, key, version = payload["bucket"], payload["key"], payload.get("version_id")
    if version:
        try:
            current = get_client(settings).head_object(Bucket=bucket, Key=key).get("VersionId")
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error(exc, f"s3://{bucket}/{key}") from exc
        if current != version:
            raise WorkflowError("Source.Superseded", f"s3://{bucket}/{key} is now version {current}, not {version}")
    spark = spark_session(settings)
    group = f"run-{ctx.run_id}-{ctx.attempt}"
    ctx.cancel_hooks.append(lambda: spark.sparkContext.cancelJobGroup(group))
    spark.sparkContext.setJobGroup(group, f"sales ETL of s3://{bucket}/{key}", interruptOnCancel=True)
    try:
        result = sales_etl.run(spark, f"s3a://{bucket}/{key}", payload["table"], payload["location"],
                               payload["schema"], ctx.run_id, payload.get("group_by", "location"),
                               payload.get("measure", "Total_Sales"), payload.get("date_column", "Date"))
    except Exception as exc:  # noqa: BLE001 - Spark errors come as py4j/analysis exceptions
        if ctx.cancelled.is_set():
            raise WorkflowError("States.Timeout", "cancelled") from exc
        raise WorkflowError("Spark.JobFailed", str(exc).splitlines()[0][:500]) from exc
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    runs.record_processed(payload["table"], result["source_id"], f"s3://{bucket}/{key}", version,
                          payload["sha256"], ctx.run_id, settings)
    return result


# ---------------------------------------------------------------- QualityCheck and metadata


def quality_check(payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Profiles the typed rows of the processed file; the report goes to s3://processed/_quality/."""
    settings = ctx.settings or get_settings()
    body = read_object(settings, payload["bucket"], payload["key"], payload.get("version_id"))
    table = quality.read_csv(body, payload["schema"])
    config = quality.QualityConfig.model_validate(payload.get("thresholds") or {})
    report = quality.profile(table, payload["table"], config, ctx.run_id)
    uris = quality.save(settings, report)
    return {"passed": report.passed, "issues": report.issues, "rows": report.rows, "report": uris["json"],
            "html": uris["html"], "cause": "; ".join(report.issues)}


def record_metadata(payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Owner, source, last update, row count and quality as metastore table properties."""
    spark = spark_session(ctx.settings)
    properties = {
        "data_owner": payload.get("owner", "unknown"),
        "data_source": payload["source"],
        "last_update": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "last_run_id": ctx.run_id,
        "row_count": str(sales_etl.row_count(spark, payload["table"])),
        "quality_status": "passed" if payload.get("quality_passed") else "failed",
        "quality_report": payload.get("quality_report", ""),
    }
    sales_etl.set_properties(spark, payload["table"], properties)
    return properties
