"""The SeaweedFS filer events read as S3 changes, shared by Lab B's `Records` and Lab C's
EventBridge events, without the stack."""

import base64
import copy

import pytest

from labs.lab_c.events import tail_events
from services.s3.events import change_record, object_changes, object_of

pytestmark = pytest.mark.unit


def to_s3_records(event: dict) -> list[dict]:
    """Lab B's reading: S3 event records."""
    return [change_record(c) for c in object_changes(event)]


def parse_meta_event(event: dict) -> dict | None:
    """Lab C's reading: the Object Created event, if any."""
    bucket = event["directory"].split("/")[2]
    return next(tail_events([event], bucket), None)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def chunk(key: str) -> dict:
    return {"fileId": "", "offset": "0", "size": "8", "fid": {"volumeId": 5, "fileKey": key, "cookie": 7}}


def filer_event(directory: str, new: dict | None, old: dict | None = None, ts_ns: int = 1795461168595546801) -> dict:
    return {"directory": directory, "tsNs": str(ts_ns),
            "eventNotification": {"oldEntry": old, "newEntry": new, "newParentPath": directory if new else ""}}


def entry(name: str, chunks: list[dict] | None = None, extended: dict[str, str] | None = None) -> dict:
    return {"name": name, "isDirectory": False, "chunks": chunks if chunks is not None else [chunk("1")],
            "attributes": {"fileSize": "8", "mtime": "1795461168"},
            "extended": {"Seaweed-X-Amz-ETag": b64("344fd2323dd33d5c058b7cf27de029e8"),
                         **{k: b64(v) for k, v in (extended or {}).items()}}}


VERSION = "67153d9475f2a74bddf5a75ecafd3a7d"
NEW_VERSION = filer_event("/buckets/raw/sales/a.csv.versions",
                          entry(f"v_{VERSION}", extended={"Seaweed-X-Amz-Version-Id": VERSION}))


def test_a_new_version_is_one_put_of_the_key_for_both_readers():
    (change,) = object_changes(NEW_VERSION)
    assert (change.event_name, change.bucket, change.key, change.version_id) == \
        ("ObjectCreated:Put", "raw", "sales/a.csv", VERSION)
    (record,) = to_s3_records(NEW_VERSION)
    assert record["eventName"] == "ObjectCreated:Put" and object_of(record) == ("raw", "sales/a.csv")
    assert record["s3"]["object"]["versionId"] == VERSION and record["s3"]["object"]["size"] == 8
    assert record["s3"]["object"]["eTag"] == "344fd2323dd33d5c058b7cf27de029e8"
    event = parse_meta_event(NEW_VERSION)
    assert (event["detail"]["object"]["key"], event["detail"]["object"]["version-id"]) == ("sales/a.csv", VERSION)


def test_a_version_turning_noncurrent_and_a_delete_marker_are_no_put():
    noncurrent = copy.deepcopy(NEW_VERSION)
    old = copy.deepcopy(noncurrent["eventNotification"]["newEntry"])
    noncurrent["eventNotification"]["oldEntry"] = old
    noncurrent["eventNotification"]["newEntry"]["extended"]["Seaweed-X-Amz-Noncurrent-Since-Ns"] = b64("1")
    assert object_changes(noncurrent) == [] and to_s3_records(noncurrent) == []
    assert parse_meta_event(noncurrent) is None

    marker = filer_event("/buckets/raw/sales/a.csv.versions",
                         entry("v_1", [], {"Seaweed-X-Amz-Delete-Marker": "true", "Seaweed-X-Amz-Version-Id": "1"}))
    (record,) = to_s3_records(marker)
    assert record["eventName"] == "ObjectRemoved:DeleteMarkerCreated" and object_of(record) == ("raw", "sales/a.csv")
    assert parse_meta_event(marker) is None

    removed = filer_event("/buckets/raw/sales/a.csv.versions", None, NEW_VERSION["eventNotification"]["newEntry"])
    (record,) = to_s3_records(removed)
    assert (record["eventName"], object_of(record), record["s3"]["object"]["versionId"]) == \
        ("ObjectRemoved:Delete", ("raw", "sales/a.csv"), VERSION)


def test_unversioned_rewrites_renames_and_metadata_updates():
    put = filer_event("/buckets/datalake/raw-zone", entry("a.json"))
    assert [r["eventName"] for r in to_s3_records(put)] == ["ObjectCreated:Put"]
    assert "versionId" not in to_s3_records(put)[0]["s3"]["object"]
    # the filer spells the same chunk `fileId` in the old entry and `fid` in the new one
    tagged_old = entry("a.json", [{**chunk("1"), "fileId": "5,01"}])
    tagged = filer_event("/buckets/datalake/raw-zone", entry("a.json", extended={"X-Amz-Tagging-t": "v"}), tagged_old)
    assert to_s3_records(tagged) == [] and parse_meta_event(tagged) is None
    rewritten = filer_event("/buckets/datalake/raw-zone", entry("a.json", [chunk("2")]), tagged_old)
    assert [r["eventName"] for r in to_s3_records(rewritten)] == ["ObjectCreated:Put"]
    assert parse_meta_event(rewritten)["detail"]["object"]["key"] == "raw-zone/a.json"
    renamed = filer_event("/buckets/datalake/raw-zone", entry("b.json"), entry("a.json"))
    assert [(r["eventName"], object_of(r)[1]) for r in to_s3_records(renamed)] == \
        [("ObjectRemoved:Delete", "raw-zone/a.json"), ("ObjectCreated:Copy", "raw-zone/b.json")]
    assert parse_meta_event(renamed) is None
    part = filer_event("/buckets/datalake/.uploads/123", entry("0001_1.part"))
    assert to_s3_records(part) == [] and parse_meta_event(part) is None
