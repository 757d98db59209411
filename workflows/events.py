"""S3 "Object Created" events (the S3 -> EventBridge stand-in).

Native mode: SeaweedFS's filer streams its metadata changes (`weed filer.meta.tail`); a new
file entry is an object created. In a versioned bucket SeaweedFS keeps versions as
`<key>.versions/v_<versionId>` entries, which gives the version id; delete markers and
multipart parts are skipped. Compose mode (MinIO) or any S3: `poll_events` lists object versions.
Both yield EventBridge-shaped events (`detail-type: Object Created`, `detail.bucket.name`,
`detail.object.key|version-id|size|etag`), each with `sequencer` = the change's time in ns.

Lab B's adapter (`lakelab.s3events`) turns the same filer stream into S3 `Records` for Lambda
handlers, for unversioned buckets: there a new version of a versioned key would read as
`key.versions/v_...` and a version turning non-current as another Put. This module keeps the
versioned-bucket reading (and a stoppable tail process) for Lab C's EventBridge-shaped trigger
and reuses `s3events.filer_address`; folding it into `s3events` is the natural next step.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from lakelab.s3events import filer_address
from lakelab.service import venv_bin
from lakelab.settings import Settings
from services.s3.service import s3_client


def object_created(bucket: str, key: str, version_id: str | None, size: int, etag: str, ts_ns: int,
                   region: str = "us-east-1") -> dict[str, Any]:
    when = datetime.fromtimestamp(ts_ns / 1e9, tz=timezone.utc)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "etag": etag, "version-id": version_id, "sequencer": str(ts_ns)},
            "reason": "PutObject",
        },
    }


def _ext(entry: dict, name: str) -> str | None:
    value = (entry.get("extended") or {}).get(name)
    return base64.b64decode(value).decode() if value else None


def parse_meta_event(change: dict[str, Any], region: str = "us-east-1") -> dict[str, Any] | None:
    """One `weed filer.meta.tail` record -> an Object Created event, or None."""
    notification = change.get("eventNotification") or {}
    new, old = notification.get("newEntry"), notification.get("oldEntry")
    directory = change.get("directory", "")
    if not new or new.get("isDirectory") or not directory.startswith("/buckets/"):
        return None
    if notification.get("newParentPath") not in (None, "", directory):
        return None  # a rename
    bucket, _, folder = directory[len("/buckets/"):].partition("/")
    if folder.startswith(".uploads") or "/.uploads" in folder:
        return None
    name, version_id = new["name"], None
    if folder.endswith(".versions") and name.startswith("v_"):
        if old or _ext(new, "Seaweed-X-Amz-Delete-Marker"):
            return None  # an existing version changed (became non-current) or a delete marker
        key, version_id = folder[: -len(".versions")], _ext(new, "Seaweed-X-Amz-Version-Id") or name[2:]
    else:
        if old and old.get("chunks") == new.get("chunks"):
            return None  # metadata-only update
        key = f"{folder}/{name}" if folder else name
    etag = _ext(new, "Seaweed-X-Amz-ETag") or ""
    size = int((new.get("attributes") or {}).get("fileSize") or 0)
    return object_created(bucket, key, version_id, size, etag, int(change.get("tsNs", 0)), region)


class MetaTail:
    """`weed filer.meta.tail` as an iterator of Object Created events for one bucket/prefix,
    starting `since_ns` (earlier changes are replayed). `stop()` ends it from another thread."""

    def __init__(self, settings: Settings, bucket: str, prefix: str = "", since_ns: int | None = None) -> None:
        self.settings, self.bucket, self.prefix = settings, bucket, prefix
        ago_s = max(1.0, (time.time_ns() - since_ns) / 1e9 + 1.0) if since_ns else 1.0
        command = [venv_bin("weed"), "filer.meta.tail", f"-filer={filer_address(settings)}",
                   f"-pathPrefix=/buckets/{bucket}/{prefix}", f"-timeAgo={ago_s:.3f}s"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._stopped = threading.Event()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        assert self.process.stdout is not None
        buffer: list[str] = []
        for line in self.process.stdout:
            buffer.append(line)
            if line.rstrip() != "}":
                continue
            try:
                change = json.loads("".join(buffer))
            except json.JSONDecodeError:
                continue  # a "}" inside a record: keep reading
            buffer = []
            event = parse_meta_event(change, self.settings.s3_region)
            if event and event["detail"]["bucket"]["name"] == self.bucket:
                yield event
        if not self._stopped.is_set():
            raise RuntimeError(f"weed filer.meta.tail ended (exit {self.process.wait()})")

    def stop(self) -> None:
        self._stopped.set()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def poll_events(settings: Settings, bucket: str, prefix: str = "", interval_s: float = 1.0,
                stop: threading.Event | None = None) -> Iterator[dict[str, Any]]:
    """Any S3 server: new object versions found by listing, every `interval_s`. Versions that
    exist when polling starts are not reported."""
    s3 = s3_client(settings)
    stop = stop or threading.Event()

    def versions() -> dict[tuple[str, str], dict]:
        found: dict[tuple[str, str], dict] = {}
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            for v in page.get("Versions", []):
                found[(v["Key"], v.get("VersionId") or "null")] = v
        return found

    seen = set(versions())
    while not stop.wait(interval_s):
        current = versions()
        for ident in sorted(set(current) - seen, key=lambda i: current[i]["LastModified"]):
            v = current[ident]
            seen.add(ident)
            yield object_created(bucket, v["Key"], None if ident[1] == "null" else ident[1], v["Size"],
                                 v["ETag"].strip('"'), time.time_ns(), settings.s3_region)
