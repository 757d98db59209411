"""S3 object-created events -> a Lambda-style handler (`handler(event, context)`).

SeaweedFS does not implement S3 bucket notifications; its filer publishes metadata events
instead. Every source is turned into the S3 `{"Records": [...]}` event shape by ONE adapter,
`to_s3_records()`:

- `weed filer.meta.tail` output (native mode, the default source of `watch_meta_tail`),
- SeaweedFS's `notification.webhook` POSTs (`{"key", "event_type", "message"}`),
- S3 / MinIO bucket notifications (already `Records`; compose mode posts them to `serve_webhook`),
- a listing of existing objects (`backfill`), through the same `s3_record()` constructor.

The handler gets one record per invocation, as S3 invokes Lambda. Failures are retried; an event
whose handler still fails is written with the error to `s3://{bucket}/_lambda_dlq/{function}/`
(the Lambda on-failure destination) and the watcher goes on.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import logging
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote_plus, unquote_plus, urlparse

from tenacity import RetryError, retry, stop_after_attempt, wait_exponential

from lakelab.settings import Settings

log = logging.getLogger("lakelab.s3events")
Handler = Callable[[dict, object], object]
BUCKETS_ROOT = "/buckets"  # where SeaweedFS's S3 gateway keeps buckets in the filer


def s3_record(bucket: str, key: str, event_name: str = "ObjectCreated:Put", size: int = 0, etag: str = "",
              when: datetime | None = None, sequencer: str = "", region: str = "us-east-1",
              source: str = "lakelab") -> dict:
    """One record of an S3 event notification (event structure version 2.1); the key is
    URL-encoded as S3 sends it (`year=2020` arrives as `year%3D2020`)."""
    when = when or datetime.now(timezone.utc)
    return {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": region,
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        "eventName": event_name,
        "userIdentity": {"principalId": source}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0", "configurationId": source,
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": source}, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag,
                       "sequencer": sequencer or f"{int(when.timestamp() * 1e9):X}"},
        },
    }


def object_of(record: dict) -> tuple[str, str]:
    """(bucket, decoded key) of an S3 event record."""
    return record["s3"]["bucket"]["name"], unquote_plus(record["s3"]["object"]["key"])


def _get(mapping: dict | None, camel: str) -> object:
    """A field of a SeaweedFS message in protojson (camelCase) or Go json (snake_case) spelling."""
    if not mapping:
        return None
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return mapping.get(camel, mapping.get(snake))


def _etag(entry: dict) -> str:
    extended = _get(entry, "extended") or {}
    if isinstance(extended, dict) and extended.get("Seaweed-X-Amz-ETag"):
        return base64.b64decode(extended["Seaweed-X-Amz-ETag"]).decode().strip('"')
    md5 = _get(_get(entry, "attributes") or {}, "md5")
    return base64.b64decode(md5).hex() if md5 else ""


def _seaweed_records(directory: str, note: dict, ts_ns: int | None, region: str) -> list[dict]:
    old, new = _get(note, "oldEntry"), _get(note, "newEntry")
    new_parent = _get(note, "newParentPath") or directory
    records = []
    if old and not _get(old, "isDirectory") and (not new or new_parent != directory
                                                  or _get(new, "name") != _get(old, "name")):
        records.append(("ObjectRemoved:Delete", f"{directory}/{_get(old, 'name')}", old))
    if new and not _get(new, "isDirectory"):
        created = "ObjectCreated:Copy" if old and (new_parent != directory or _get(new, "name") != _get(old, "name")) \
            else "ObjectCreated:Put"
        records.append((created, f"{new_parent}/{_get(new, 'name')}", new))
    out = []
    for event_name, path, entry in records:
        parts = path.split("/", 3)  # "", "buckets", bucket, key
        if len(parts) < 4 or f"/{parts[1]}" != BUCKETS_ROOT or parts[3].startswith(".uploads/"):
            continue
        attributes = _get(entry, "attributes") or {}
        when = datetime.fromtimestamp(ts_ns / 1e9 if ts_ns else int(_get(attributes, "mtime") or time.time()),
                                      timezone.utc)
        out.append(s3_record(parts[2], parts[3], event_name, int(_get(attributes, "fileSize") or 0),
                             _etag(entry), when, f"{ts_ns:X}" if ts_ns else "", region, "seaweedfs"))
    return out


def to_s3_records(payload: dict, region: str = "us-east-1") -> list[dict]:
    """THE adapter: S3 event records from an S3/MinIO notification, a `weed filer.meta.tail`
    event or a SeaweedFS notification webhook message. Directories and multipart parts give none."""
    if "Records" in payload:  # S3 and MinIO notifications
        return [r for r in payload["Records"] if r.get("eventSource", "aws:s3") in ("aws:s3", "minio:s3")]
    if "eventNotification" in payload:  # weed filer.meta.tail
        return _seaweed_records(payload["directory"], payload["eventNotification"], int(payload.get("tsNs") or 0),
                                region)
    if "message" in payload and "key" in payload:  # SeaweedFS notification.webhook: key = entry path
        return _seaweed_records(str(payload["key"]).rsplit("/", 1)[0], payload["message"], None, region)
    raise ValueError(f"not an S3, MinIO or SeaweedFS event: keys {sorted(payload)[:8]}")


@dataclass
class Context:
    """What a Lambda handler gets as `context`."""

    function_name: str
    aws_request_id: str
    invoked_at: float


def load_handler(spec: str) -> Handler:
    """`module:function`, e.g. `lambdas.stockdata_etl:handler`."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name or "handler")


class Invoker:
    """Calls the handler once per record, with retries and a dead-letter location."""

    def __init__(self, settings: Settings, handler: Handler, function_name: str, bucket: str = "datalake",
                 attempts: int = 3) -> None:
        from services.s3.service import s3_client

        self.settings, self.handler, self.function_name = settings, handler, function_name
        self.bucket, self.attempts = bucket, attempts
        self.s3 = s3_client(settings)
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


def filer_address(settings: Settings) -> str:
    """SeaweedFS's filer sits next to its S3 gateway (port 8888 of the same host)."""
    return f"{urlparse(settings.s3_endpoint).hostname}:8888"


def meta_tail_events(settings: Settings, path_prefix: str, since_ns: int,
                     stop: threading.Event | None = None) -> Iterator[dict]:
    """Events of `weed filer.meta.tail` from `since_ns` (0 = from now), one dict per event,
    until `stop` is set. Raises ConnectionError when the command ends by itself."""
    from lakelab.service import venv_bin

    command = [venv_bin("weed"), "filer.meta.tail", f"-filer={filer_address(settings)}", f"-pathPrefix={path_prefix}"]
    if since_ns:
        command.append(f"-timeAgo={max(0.001, (time.time_ns() - since_ns) / 1e9 + 1.0):.3f}s")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop = stop or threading.Event()
    finished = threading.Event()

    def stop_watch() -> None:  # ends the command (and so the loop below) once stop is set
        while not finished.is_set():
            if stop.wait(0.5):
                process.terminate()
                return

    threading.Thread(target=stop_watch, daemon=True).start()
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.rstrip("\n") == "}":  # the pretty-printed event closes at column 0
                yield json.loads("".join(lines))
                lines = []
        if stop.is_set():
            return
        error = process.stderr.read() if process.stderr else ""
        raise ConnectionError(f"weed filer.meta.tail exited with {process.wait()}: {error.strip()[-500:]}")
    finally:
        finished.set()
        if process.poll() is None:
            process.terminate()
        process.wait(10)


def watch_meta_tail(settings: Settings, invoke: Invoker, bucket: str, prefix: str, checkpoint: Checkpoint,
                    stop: threading.Event, ready: Callable[[], None] = lambda: None) -> None:
    """Follow the filer's events under s3://bucket/prefix, invoke the handler for each object
    event, checkpoint after each; resume from the checkpoint after a restart (at least once:
    handlers must be idempotent). Reconnects with backoff when the filer goes away."""
    path_prefix = f"{BUCKETS_ROOT}/{bucket}/{prefix}".rstrip("/")
    start_ns = checkpoint.ts_ns or time.time_ns()
    delay = 1.0
    while not stop.is_set():
        try:
            ready()
            for event in meta_tail_events(settings, path_prefix, checkpoint.ts_ns or start_ns, stop):
                ts_ns = int(event.get("tsNs") or 0)
                if ts_ns and ts_ns <= checkpoint.ts_ns:
                    continue
                for record in to_s3_records(event, settings.s3_region):
                    if object_of(record)[1].startswith(prefix):
                        invoke(record)
                checkpoint.save(ts_ns)
                delay = 1.0
                if stop.is_set():
                    return
        except (ConnectionError, OSError) as exc:
            log.warning("%s; reconnecting in %.0f s", exc, delay)
            stop.wait(delay)
            delay = min(delay * 2, 30)


def serve_webhook(settings: Settings, invoke: Invoker, host: str, port: int, prefix: str = "") -> ThreadingHTTPServer:
    """An HTTP endpoint for MinIO bucket notifications or SeaweedFS's notification.webhook:
    POST any supported event JSON; 200 when handled, 400 when not an event, 500 when the handler
    failed (so the sender retries). Call `.serve_forever()` on the result."""

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                records = to_s3_records(json.loads(body or b"{}"), settings.s3_region)
            except (ValueError, KeyError, TypeError) as exc:
                return self._answer(400, {"error": str(exc)})
            results = [invoke(r) for r in records if object_of(r)[1].startswith(prefix)]
            failed = invoke.failures
            return self._answer(200 if all(r is not None for r in results) else 500,
                                {"handled": len(results), "failures_so_far": failed})

        def do_GET(self) -> None:  # noqa: N802  (MinIO and health checks probe the endpoint)
            self._answer(200, {"function": invoke.function_name})

        do_HEAD = do_GET  # noqa: N815

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def log_message(self, fmt: str, *args: object) -> None:
            log.debug(fmt, *args)

    return ThreadingHTTPServer((host, port), Receiver)


def backfill_records(settings: Settings, bucket: str, prefix: str) -> Iterator[dict]:
    """ObjectCreated records for the objects already under s3://bucket/prefix (what existed
    before the trigger), oldest key first; folder markers are left out."""
    from services.s3.service import s3_client

    pages = s3_client(settings).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for item in page.get("Contents", []):
            if not item["Key"].endswith("/"):
                yield s3_record(bucket, item["Key"], "ObjectCreated:Put", item["Size"], item["ETag"].strip('"'),
                                item["LastModified"].astimezone(timezone.utc), region=settings.s3_region,
                                source="backfill")
