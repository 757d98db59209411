"""Lab B Lambda (`etl_function` of the lab): a raw-zone JSON-lines file of trades becomes snappy
Parquet under `processed-zone/{dataset}/symbol=/year=/month=/day=/hour=` of *event* time
(`transaction_ts`, UTC), with the columns of the lab's `processed_stockdata` table and without
`symbol` (it is a partition).

The zones are the lab's (resources.yaml); `handler_for(datasets)` is the function for other
datasets than the lab's own (`raw-zone/{dataset}/...`), the lab's `SOURCE_DATASETS`.

Idempotent: output keys derive from the source key, and a manifest
`{PROCESSED_ZONE}/_manifests/{dataset}/{path}.json` remembers the source ETag and the outputs, so a
re-delivered event is skipped and a rewritten source replaces its old outputs. Nothing is dropped
silently: rejected lines, empty files and events for missing objects are written to
`{PROCESSED_ZONE}/{dataset}_errors/{error-type}/{path}` with the reason and line number.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from functools import cache

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from lakelab.resources import resources
from lakelab.settings import get_settings
from services.s3.client import get_client
from services.s3.events import object_of

log = logging.getLogger(__name__)
LAB = resources().labs.lab_b
RAW_ZONE, PROCESSED_ZONE = LAB.raw_zone.strip("/"), LAB.processed_zone.strip("/")
SCHEMA = pa.schema([("transaction_date", pa.timestamp("ms")), ("price", pa.float64()), ("amount", pa.float64()),
                    ("dollar_amount", pa.float64()), ("type", pa.string()), ("trans_id", pa.int64())])
REQUIRED = ("transaction_ts", "symbol", "price", "amount", "dollar_amount", "type", "trans_id")
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.\-]+$")  # symbols become folder names


@cache
def _s3():
    return get_client(get_settings())


def parse_lines(body: bytes) -> tuple[list[tuple[int, dict]], list[tuple[int, str, str, str]]]:
    """JSON objects of a JSON-lines body (several objects on one line are accepted, as Firehose
    concatenates records without newlines) -> ([(line, record)], [(line, error type, reason, raw)])."""
    records, errors = [], []
    decoder = json.JSONDecoder()
    for number, raw in enumerate(body.split(b"\n"), start=1):
        text = raw.decode("utf-8", errors="replace").strip()
        position = 0
        while position < len(text):
            try:
                value, end = decoder.raw_decode(text, position)
            except json.JSONDecodeError as exc:
                errors.append((number, "parse-failed", f"not JSON: {exc.msg} at column {exc.colno}", text))
                break
            if isinstance(value, dict):
                records.append((number, value))
            else:
                errors.append((number, "parse-failed", f"JSON {type(value).__name__}, not an object", text))
            position = end
            while position < len(text) and text[position].isspace():
                position += 1
    return records, errors


def to_row(record: dict) -> tuple[str, datetime, dict]:
    """(symbol, event time, Parquet row) of a trade; ValueError/KeyError name the bad field."""
    missing = [name for name in REQUIRED if record.get(name) in (None, "")]
    if missing:
        raise KeyError(f"missing field(s): {', '.join(missing)}")
    symbol = str(record["symbol"])
    if not SAFE_VALUE.match(symbol):
        raise ValueError(f"symbol {symbol!r} cannot be a partition value")
    try:
        when = datetime.fromtimestamp(int(float(record["transaction_ts"])), timezone.utc)
        row = {"transaction_date": when.replace(tzinfo=None), "price": float(record["price"]),
               "amount": float(record["amount"]), "dollar_amount": float(record["dollar_amount"]),
               "type": str(record["type"]), "trans_id": int(record["trans_id"])}
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"bad value: {exc}") from exc
    return symbol, when, row


def _parquet(rows: list[dict]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), buffer, compression="snappy")
    return buffer.getvalue()


def _error_lines(source: str, items: list[tuple[int, str, str]]) -> bytes:
    return b"".join(json.dumps({"source": source, "line": line, "errorMessage": reason, "rawData": raw}).encode() + b"\n"
                    for line, reason, raw in items)


def process_object(bucket: str, key: str, datasets: Iterable[str] = (LAB.dataset,)) -> dict:
    """Convert one raw object of one of `datasets`; returns what was written."""
    datasets, raw_zone, processed_zone = set(datasets), RAW_ZONE, PROCESSED_ZONE
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != raw_zone or parts[1] not in datasets:
        reason = f"not under {raw_zone}/{{{','.join(sorted(datasets))}}}/"
        log.info("s3://%s/%s: ignored, %s", bucket, key, reason)
        return {"statusCode": 204, "key": key, "ignored": reason}
    dataset, rest = parts[1], "/".join(parts[2:])
    source = f"s3://{bucket}/{key}"
    errors_prefix = f"{processed_zone}/{dataset}_errors"
    manifest_key = f"{processed_zone}/_manifests/{dataset}/{rest}.json"
    s3 = _s3()
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("NoSuchKey", "404"):
            raise
        error_key = f"{errors_prefix}/object-missing/{rest}.json"
        s3.put_object(Bucket=bucket, Key=error_key, Body=_error_lines(source, [(0, "the object no longer exists "
                      "(deleted or overwritten before the event was handled)", "")]))
        log.error("%s: object missing; noted at s3://%s/%s", source, bucket, error_key)
        return {"statusCode": 404, "key": key, "error": "object-missing", "error_key": error_key}
    etag = obj["ETag"].strip('"')
    try:
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    except ClientError:
        manifest = {}
    if manifest.get("etag") == etag:
        log.info("%s: already processed (ETag %s), nothing to do", source, etag)
        return {**manifest, "statusCode": 200, "skipped": True}
    body = obj["Body"].read()

    records, parse_errors = parse_lines(body)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    rejected: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for line, kind, reason, raw in parse_errors:
        rejected[kind].append((line, reason, raw))
    for line, record in records:
        try:
            symbol, when, row = to_row(record)
        except KeyError as exc:
            rejected["missing-fields"].append((line, str(exc.args[0]), json.dumps(record)))
            continue
        except ValueError as exc:
            rejected["bad-value"].append((line, str(exc), json.dumps(record)))
            continue
        groups[(symbol, when.year, when.month, when.day, when.hour)].append(row)
    if not body.strip():
        rejected["empty-file"].append((0, "the object is empty: no records", ""))

    stem = f"{parts[-1].rsplit('.', 1)[0]}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    outputs = []
    for (symbol, year, month, day, hour), rows in sorted(groups.items()):
        out = f"{processed_zone}/{dataset}/symbol={symbol}/year={year}/month={month}/day={day}/hour={hour}/{stem}.parquet"
        s3.put_object(Bucket=bucket, Key=out, Body=_parquet(rows))
        outputs.append(out)
    error_keys = {}
    for kind, items in sorted(rejected.items()):
        error_keys[kind] = f"{errors_prefix}/{kind}/{rest}"
        s3.put_object(Bucket=bucket, Key=error_keys[kind], Body=_error_lines(source, items))
        log.warning("%s: %d line(s) rejected (%s), first at line %d: %s; see s3://%s/%s", source, len(items), kind,
                    items[0][0], items[0][1], bucket, error_keys[kind])
    for stale in set(manifest.get("new_keys", [])) - set(outputs):  # a rewritten source: old outputs go
        s3.delete_object(Bucket=bucket, Key=stale)
    result = {"statusCode": 200, "key": key, "etag": etag, "records": sum(map(len, groups.values())),
              "rejected": {k: len(v) for k, v in rejected.items()}, "error_keys": error_keys, "new_keys": outputs}
    s3.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps(result).encode())
    log.info("%s: %d records -> %d Parquet object(s)", source, result["records"], len(outputs))
    return result


def handler_for(datasets: Iterable[str]) -> Callable[[dict, object], dict]:
    """The Lambda entry point for S3 `ObjectCreated:*` events of these datasets (other events
    are ignored)."""
    datasets = tuple(datasets)

    def handler(event: dict, context: object = None) -> dict:
        results = []
        for record in event.get("Records", []):
            bucket, key = object_of(record)
            if not record.get("eventName", "").startswith("ObjectCreated:"):
                results.append({"statusCode": 204, "key": key, "ignored": record.get("eventName")})
                continue
            results.append(process_object(bucket, key, datasets))
        return results[0] if len(results) == 1 else {"statusCode": 200, "results": results}

    return handler


handler = handler_for([LAB.dataset])
