"""Lab C governance: object versions (list, restore, undelete) and table metadata."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from lakelab.settings import Settings
from services.trino.client import get_client, quote_identifier


class ObjectVersion(BaseModel):
    version_id: str
    is_latest: bool
    delete_marker: bool
    size: int | None
    last_modified: datetime
    etag: str | None


def list_versions(s3, bucket: str, key: str) -> list[ObjectVersion]:
    """Every version and delete marker of exactly `key`, newest first."""
    found: list[ObjectVersion] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
        for v in page.get("Versions", []):
            if v["Key"] == key:
                found.append(ObjectVersion(version_id=v["VersionId"], is_latest=v["IsLatest"], delete_marker=False,
                                           size=v["Size"], last_modified=v["LastModified"], etag=v["ETag"].strip('"')))
        for m in page.get("DeleteMarkers", []):
            if m["Key"] == key:
                found.append(ObjectVersion(version_id=m["VersionId"], is_latest=m["IsLatest"], delete_marker=True,
                                           size=None, last_modified=m["LastModified"], etag=None))
    return sorted(found, key=lambda v: (v.is_latest, v.last_modified), reverse=True)


def restore(s3, bucket: str, key: str, version_id: str | None = None) -> str:
    """Make an older state current again, as the S3 console does:
    - with `version_id`: copy that version over the key (a new latest version; history kept);
    - without, when the key is deleted: remove the delete marker(s) on top;
    - without, otherwise: copy the version before the latest."""
    versions = list_versions(s3, bucket, key)
    if not versions:
        raise LookupError(f"s3://{bucket}/{key} has no versions")
    if version_id is None and versions[0].delete_marker:
        removed = []
        for v in versions:
            if not v.delete_marker:
                break
            s3.delete_object(Bucket=bucket, Key=key, VersionId=v.version_id)
            removed.append(v.version_id)
        return f"removed delete marker(s) {', '.join(removed)}; current is {versions[len(removed)].version_id}" \
            if len(removed) < len(versions) else f"removed delete marker(s) {', '.join(removed)}"
    if version_id is None:
        older = [v for v in versions[1:] if not v.delete_marker]
        if not older:
            raise LookupError(f"s3://{bucket}/{key} has no older version to restore")
        version_id = older[0].version_id
    chosen = next((v for v in versions if v.version_id == version_id), None)
    if chosen is None:
        raise LookupError(f"s3://{bucket}/{key} has no version {version_id}")
    if chosen.delete_marker:
        raise LookupError(f"{version_id} is a delete marker; restore without --version-id to remove it")
    new = s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key, "VersionId": version_id})
    return f"copied version {version_id} over the key; new current version {new.get('VersionId')}"


def table_properties(settings: Settings, table: str) -> dict[str, Any]:
    """A hive table's metastore properties, read through Trino (`"<table>$properties"`)."""
    schema, _, name = table.rpartition(".")
    cursor = get_client(settings, "hive", schema or "default").cursor()
    cursor.execute(f"SELECT * FROM {quote_identifier(name + '$properties')}")
    row = cursor.fetchone()
    return dict(zip([d[0] for d in cursor.description], row)) if row else {}
