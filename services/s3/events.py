"""S3 object events from SeaweedFS: its filer's metadata stream read as S3 object changes, and
the S3 event-notification record shape they are delivered in.

SeaweedFS does not implement S3 bucket notifications; its filer publishes metadata events
instead. This module is THE SeaweedFS event adapter of the project: `MetaTail` owns the
`weed filer.meta.tail` process (filer address, command line, resuming from a time, stopping,
reading its JSON events) and `object_changes()` reads a filer event as S3 object changes
(`ObjectChange`): a new or rewritten object, a rename, a deletion; in a versioned bucket, where
SeaweedFS keeps the versions of a key as `<key>.versions/v_<versionId>` entries, a new version is
a change of the key with its version id, a delete marker is `ObjectRemoved:DeleteMarkerCreated`,
and a version turning non-current (like any metadata-only update) is no change. Directories and
multipart parts give none. Lab B's Lambda gets them as S3 `{"Records": [...]}` events
(`change_record()`), Lab C's workflow as EventBridge "Object Created" events.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote_plus, unquote_plus

from lakelab.settings import Settings
from services.base import venv_bin
from services.s3.security import client_env

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
    """THE reading of a SeaweedFS filer change (a meta.tail `eventNotification`, in either
    spelling) in `directory` as S3 object changes."""
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
        command = [venv_bin("weed"), "filer.meta.tail", f"-filer={settings.s3_filer_address}",
                   f"-pathPrefix={path_prefix}"]
        if since_ns:
            command.append(f"-timeAgo={max(0.001, (time.time_ns() - since_ns) / 1e9 + 1.0):.3f}s")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, **client_env(settings)})
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


