"""S3 "Object Created" events (the S3 -> EventBridge stand-in).

`services.s3.events` is the SeaweedFS adapter. Its `MetaTail` runs
`weed filer.meta.tail` and its `object_changes()` reads each filer event as S3 object changes
(in a versioned bucket a new `<key>.versions/v_<versionId>` entry is a new version of the key,
with its id; delete markers, versions turning non-current, metadata updates, folders and
multipart parts are no upload). This module turns each uploaded object or version
(`ObjectCreated:Put`) into the EventBridge shape; renames (`ObjectCreated:Copy`) and removals
start nothing. The events are EventBridge-shaped (`detail-type: Object Created`, `detail.bucket.name`,
`detail.object.key|version-id|size|etag`), each with `sequencer` = the change's time in ns.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from services.s3.events import ObjectChange, object_changes


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


def change_event(change: ObjectChange, region: str = "us-east-1") -> dict[str, Any] | None:
    """The Object Created event of an uploaded object or version, None for any other change."""
    if change.event_name != "ObjectCreated:Put":
        return None
    return object_created(change.bucket, change.key, change.version_id, change.size, change.etag, change.ts_ns,
                          region)


def parse_meta_event(change: dict[str, Any], region: str = "us-east-1") -> dict[str, Any] | None:
    """One `weed filer.meta.tail` record -> an Object Created event, or None."""
    return next(filter(None, (change_event(c, region) for c in object_changes(change))), None)


def tail_events(tail: Iterable[dict], bucket: str, prefix: str = "",
                region: str = "us-east-1") -> Iterator[dict[str, Any]]:
    """The Object Created events under s3://bucket/prefix of a stream of filer events (a
    `services.s3.events.MetaTail`)."""
    for filer_event in tail:
        for change in object_changes(filer_event):
            event = change_event(change, region) if change.under(bucket, prefix) else None
            if event:
                yield event
