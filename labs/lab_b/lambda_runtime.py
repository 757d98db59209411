"""The Lambda runtime of Lab B: S3 object-created events -> a handler `handler(event, context)`.

Events come from the S3 server's own event stream (`services.s3.events`) or from a listing of
existing objects (`backfill_records`), always as S3 `{"Records": [...]}` events. The handler gets one record per invocation, as S3 invokes Lambda. Failures are retried;
an event whose handler still fails is written with the error to
`s3://{bucket}/_lambda_dlq/{function}/` (the Lambda on-failure destination) and the watcher goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path

from tenacity import RetryError, retry, stop_after_attempt, wait_exponential

from lakelab.settings import Settings
from services.s3 import client as s3
from services.s3.events import bucket_path, change_record, meta_tail_events, object_changes, object_of, s3_record

log = logging.getLogger(__name__)
Handler = Callable[[dict, object], object]

@dataclass
class Context:
    """What a Lambda handler gets as `context`."""

    function_name: str
    aws_request_id: str
    invoked_at: float


class Invoker:
    """Calls the handler once per record, with retries and a dead-letter location."""

    def __init__(self, settings: Settings, handler: Handler, function_name: str, bucket: str = "datalake",
                 attempts: int = 3) -> None:
        self.settings, self.handler, self.function_name = settings, handler, function_name
        self.bucket, self.attempts = bucket, attempts
        self.s3 = s3.get_client(settings)
        self.invocations = self.failures = 0

    def __call__(self, record: dict) -> object:
        request_id = hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
        context = Context(self.function_name, request_id, time.time())

        @retry(stop=stop_after_attempt(self.attempts), wait=wait_exponential(0.5, max=5))
        def invoke() -> object:
            return self.handler({"Records": [record]}, context)

        self.invocations += 1
        try:
            return invoke()
        except RetryError as exc:
            self.failures += 1
            error = exc.last_attempt.exception()
            key = f"_lambda_dlq/{self.function_name}/{request_id}.json"
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=json.dumps({
                "requestContext": {"functionName": self.function_name, "requestId": request_id,
                                   "condition": "RetriesExhausted", "approximateInvokeCount": self.attempts},
                "requestPayload": {"Records": [record]},
                "responsePayload": {"errorType": type(error).__name__, "errorMessage": str(error),
                                    "stackTrace": traceback.format_exception(error)},
            }, indent=1).encode())
            log.error("%s failed %d times on %s: %s; event kept at s3://%s/%s", self.function_name,
                      self.attempts, object_of(record)[1], error, self.bucket, key)
            return None


class Checkpoint:
    """The filer event time (ns) up to which events were handled, in a small local file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ts_ns = json.loads(path.read_text())["ts_ns"] if path.exists() else 0

    def save(self, ts_ns: int) -> None:
        self.ts_ns = max(self.ts_ns, ts_ns)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"ts_ns": self.ts_ns}))
        tmp.replace(self.path)


def watch_meta_tail(settings: Settings, invoke: Invoker, bucket: str, prefix: str, checkpoint: Checkpoint,
                    stop: threading.Event, ready: Callable[[], None] = lambda: None) -> None:
    """Follow the filer's events under s3://bucket/prefix, invoke the handler for each object
    event, checkpoint after each; resume from the checkpoint after a restart (at least once:
    handlers must be idempotent). Reconnects with backoff when the filer goes away."""
    start_ns = checkpoint.ts_ns or time.time_ns()
    delay = 1.0
    while not stop.is_set():
        try:
            ready()
            for event in meta_tail_events(settings, bucket_path(bucket, prefix), checkpoint.ts_ns or start_ns, stop):
                ts_ns = int(event.get("tsNs") or 0)
                if ts_ns and ts_ns <= checkpoint.ts_ns:
                    continue
                for change in object_changes(event):
                    if change.under(bucket, prefix):
                        invoke(change_record(change, settings.s3_region))
                checkpoint.save(ts_ns)
                delay = 1.0
                if stop.is_set():
                    return
        except (ConnectionError, OSError) as exc:
            log.warning("%s; reconnecting in %.0f s", exc, delay)
            stop.wait(delay)
            delay = min(delay * 2, 30)


def backfill_records(settings: Settings, bucket: str, prefix: str) -> Iterator[dict]:
    """ObjectCreated records for the objects already under s3://bucket/prefix (what existed
    before the trigger), oldest key first; folder markers are left out."""
    pages = s3.get_client(settings).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for item in page.get("Contents", []):
            if not item["Key"].endswith("/"):
                yield s3_record(bucket, item["Key"], "ObjectCreated:Put", item["Size"], item["ETag"].strip('"'),
                                item["LastModified"].astimezone(timezone.utc), region=settings.s3_region,
                                source="backfill")
