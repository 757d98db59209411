"""S3 object events from SeaweedFS, and S3 object-created events -> a Lambda-style handler
(`handler(event, context)`).

SeaweedFS does not implement S3 bucket notifications; its filer publishes metadata events
instead. This module is THE SeaweedFS adapter of the project: `MetaTail` owns the
`weed filer.meta.tail` process (filer address, command line, resuming from a time, stopping,
reading its JSON events) and `object_changes()` reads a filer event as S3 object changes
(`ObjectChange`): a new or rewritten object, a rename, a deletion; in a versioned bucket, where
SeaweedFS keeps the versions of a key as `<key>.versions/v_<versionId>` entries, a new version is
a change of the key with its version id, a delete marker is `ObjectRemoved:DeleteMarkerCreated`,
and a version turning non-current (like any metadata-only update) is no change. Directories and
multipart parts give none. Lab C's EventBridge "Object Created" events (`workflows.events`) are
made from the same changes.

For Lambda handlers every source is turned into the S3 `{"Records": [...]}` event shape by ONE
function, `to_s3_records()`:

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
from collections import deque
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
              source: str = "lakelab", version_id: str | None = None) -> dict:
    """One record of an S3 event notification (event structure version 2.1); the key is
    URL-encoded as S3 sends it (`year=2020` arrives as `year%3D2020`); `versionId` is there for
    an object of a versioned bucket."""
    when = when or datetime.now(timezone.utc)
    version = {"versionId": version_id} if version_id else {}
    return {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": region,
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        "eventName": event_name,
        "userIdentity": {"principalId": source}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0", "configurationId": source,
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": source}, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag, **version,
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


def _extended(entry: dict, name: str) -> str | None:
    """An extended attribute of a filer entry (base64 in the message), decoded."""
    extended = _get(entry, "extended") or {}
    value = extended.get(name) if isinstance(extended, dict) else None
    return base64.b64decode(value).decode() if value else None


def _etag(entry: dict) -> str:
    etag = _extended(entry, "Seaweed-X-Amz-ETag")
    if etag:
        return etag.strip('"')
    md5 = _get(_get(entry, "attributes") or {}, "md5")
    return base64.b64decode(md5).hex() if md5 else ""


@dataclass(frozen=True)
class ObjectChange:
    """One S3 object change read from a SeaweedFS filer event."""

    event_name: str  # ObjectCreated:Put|Copy (a rename), ObjectRemoved:Delete|DeleteMarkerCreated
    bucket: str
    key: str
    version_id: str | None  # in a versioned bucket
    size: int
    etag: str
    ts_ns: int  # the filer event time (the entry's mtime when the message has none)

    def under(self, bucket: str, prefix: str = "") -> bool:
        return self.bucket == bucket and self.key.startswith(prefix)


def _object(path: str, entry: dict) -> tuple[str, str, str | None] | None:
    """(bucket, key, version id) of the file entry at `path`; None outside the buckets and for
    multipart parts (`.uploads/`)."""
    parts = path.split("/", 3)  # "", "buckets", bucket, key
    if len(parts) < 4 or f"/{parts[1]}" != BUCKETS_ROOT or not parts[2]:
        return None
    folder, _, name = parts[3].rpartition("/")
    if ".uploads" in folder.split("/"):
        return None
    if folder.endswith(".versions") and name.startswith("v_"):  # <key>.versions/v_<versionId>
        key = folder[: -len(".versions")]
        return (parts[2], key, _extended(entry, "Seaweed-X-Amz-Version-Id") or name[2:]) if key else None
    return parts[2], parts[3], None


def _same_data(old: dict, new: dict) -> bool:
    """Whether a rewritten file entry keeps its bytes: the same chunks (by file id, which the filer
    spells `fileId` or `fid` from one message to the next) and inline content. A file without
    chunks (empty or inline) cannot be told apart: it counts as rewritten."""
    def data(entry: dict) -> list:
        return [(json.dumps(_get(c, "fid"), sort_keys=True) if _get(c, "fid") else _get(c, "fileId"),
                 _get(c, "offset"), _get(c, "size")) for c in _get(entry, "chunks") or []]

    return bool(data(new)) and data(new) == data(old) and _get(new, "content") == _get(old, "content")


def filer_changes(directory: str, note: dict, ts_ns: int = 0) -> list[ObjectChange]:
    """THE reading of a SeaweedFS filer change (a meta.tail `eventNotification` or a webhook
    `message`, either spelling) in `directory` as S3 object changes."""
    old, new = _get(note, "oldEntry"), _get(note, "newEntry")
    new_parent = _get(note, "newParentPath") or directory
    moved = bool(old and new) and (new_parent != directory or _get(new, "name") != _get(old, "name"))
    changes: list[ObjectChange] = []

    def change(event_name: str, path: str, entry: dict) -> None:
        located = _object(path, entry)
        if not located or (event_name == "ObjectCreated:Put" and old and not moved
                            and (located[2] or _same_data(old, entry))):
            return  # an existing version turning non-current, tags or other metadata: no new object
        attributes = _get(entry, "attributes") or {}
        changes.append(ObjectChange(event_name, *located, int(_get(attributes, "fileSize") or 0), _etag(entry),
                                    ts_ns or int(_get(attributes, "mtime") or time.time()) * 10**9))

    if old and not _get(old, "isDirectory") and (not new or moved):
        change("ObjectRemoved:Delete", f"{directory}/{_get(old, 'name')}", old)
    if new and not _get(new, "isDirectory"):
        if moved:
            event_name = "ObjectCreated:Copy"
        elif not old and _extended(new, "Seaweed-X-Amz-Delete-Marker"):
            event_name = "ObjectRemoved:DeleteMarkerCreated"
        else:
            event_name = "ObjectCreated:Put"  # a new file or version, or a file rewritten in place
        change(event_name, f"{new_parent}/{_get(new, 'name')}", new)
    return changes


def object_changes(event: dict) -> list[ObjectChange]:
    """The S3 object changes of one `weed filer.meta.tail` event."""
    return filer_changes(event.get("directory", ""), event.get("eventNotification") or {}, int(event.get("tsNs") or 0))


def change_record(change: ObjectChange, region: str = "us-east-1") -> dict:
    """The S3 event record of a filer change."""
    return s3_record(change.bucket, change.key, change.event_name, change.size, change.etag,
                     datetime.fromtimestamp(change.ts_ns / 1e9, timezone.utc), f"{change.ts_ns:X}", region,
                     "seaweedfs", change.version_id)


def to_s3_records(payload: dict, region: str = "us-east-1") -> list[dict]:
    """THE adapter: S3 event records from an S3/MinIO notification, a `weed filer.meta.tail`
    event or a SeaweedFS notification webhook message. Directories and multipart parts give none."""
    if "Records" in payload:  # S3 and MinIO notifications
        return [r for r in payload["Records"] if r.get("eventSource", "aws:s3") in ("aws:s3", "minio:s3")]
    if "eventNotification" in payload:  # weed filer.meta.tail
        changes = object_changes(payload)
    elif "message" in payload and "key" in payload:  # SeaweedFS notification.webhook: key = entry path
        changes = filer_changes(str(payload["key"]).rsplit("/", 1)[0], payload["message"])
    else:
        raise ValueError(f"not an S3, MinIO or SeaweedFS event: keys {sorted(payload)[:8]}")
    return [change_record(c, region) for c in changes]


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


def bucket_path(bucket: str, prefix: str = "") -> str:
    """The filer path (a `-pathPrefix`) of the objects under s3://bucket/prefix."""
    return f"{BUCKETS_ROOT}/{bucket}/{prefix}"


class MetaTail:
    """THE `weed filer.meta.tail` process: the filer's events under `path_prefix` (JSON dicts, in
    order) from `since_ns` (0 = from now; a resume replays from a second before it), until `stop()`
    is called or the `stop` event is set, from any thread. Iterating raises ConnectionError (an
    OSError) when the command ends by itself (the filer went away); the process ends with the
    iteration."""

    def __init__(self, settings: Settings, path_prefix: str, since_ns: int = 0,
                 stop: threading.Event | None = None) -> None:
        from lakelab.service import venv_bin

        command = [venv_bin("weed"), "filer.meta.tail", f"-filer={filer_address(settings)}",
                   f"-pathPrefix={path_prefix}"]
        if since_ns:
            command.append(f"-timeAgo={max(0.001, (time.time_ns() - since_ns) / 1e9 + 1.0):.3f}s")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._errors: deque[str] = deque(maxlen=20)  # the last lines of stderr, read as they come
        self._reader = threading.Thread(target=self._errors.extend, args=(self.process.stderr,), daemon=True)
        self._reader.start()
        self._stopped = threading.Event()
        self._stop_event = stop
        if stop is not None:
            threading.Thread(target=self._stop_when_set, args=(stop,), daemon=True).start()

    def _stop_when_set(self, stop: threading.Event) -> None:
        while self.process.poll() is None:
            if stop.wait(0.5):
                self.stop()
                return

    def __iter__(self) -> Iterator[dict]:
        assert self.process.stdout is not None
        lines: list[str] = []
        try:
            for line in self.process.stdout:
                if line.rstrip() == "{":  # a pretty-printed event opens and closes at column 0
                    lines = []
                lines.append(line)
                if line.rstrip() != "}":
                    continue
                try:
                    event = json.loads("".join(lines))
                except json.JSONDecodeError:
                    continue  # a "}" inside an event: keep reading
                lines = []
                yield event
            if self._stopped.is_set() or (self._stop_event is not None and self._stop_event.is_set()):
                return
            code = self.process.wait()
            self._reader.join(5)
            raise ConnectionError(f"weed filer.meta.tail exited with {code}: {''.join(self._errors).strip()[-500:]}")
        finally:
            self.stop()
            self.process.stdout.close()

    def stop(self) -> None:
        self._stopped.set()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def meta_tail_events(settings: Settings, path_prefix: str, since_ns: int,
                     stop: threading.Event | None = None) -> Iterator[dict]:
    """The events of a `MetaTail` (see there)."""
    return iter(MetaTail(settings, path_prefix, since_ns, stop))


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
