"""Probes of the object store: the S3 gateway, with its identities and per-user policies, is the
only way to the data. SeaweedFS's filer, master, volume and admin ports answer nothing useful
without SeaweedFS's own signed tokens, and a user gets exactly what its policy file declares."""

from __future__ import annotations

import uuid

import httpx
import pytest
from botocore.exceptions import ClientError

from services.s3.client import get_client

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def versioned_object(stack):
    """An object with two versions in the versioned `raw` bucket, written by the admin."""
    s3 = get_client(stack)
    key = f"security-probe/{uuid.uuid4().hex[:8]}.txt"
    first = s3.put_object(Bucket="raw", Key=key, Body=b"version one")["VersionId"]
    s3.put_object(Bucket="raw", Key=key, Body=b"version two")
    yield key, first
    for version in s3.list_object_versions(Bucket="raw", Prefix=key).get("Versions", []):
        s3.delete_object(Bucket="raw", Key=key, VersionId=version["VersionId"])


def _get(url: str, **kwargs) -> httpx.Response | None:
    """The answer, or None when nothing listens."""
    try:
        return httpx.request(kwargs.pop("method", "GET"), url, timeout=10, **kwargs)
    except httpx.ConnectError:
        return None


def test_the_admin_port_gives_out_no_users_or_keys(stack):
    for path in ("/api/users", "/api/s3/users", "/", "/api/cluster/status"):
        response = _get(f"http://127.0.0.1:{stack.s3_admin_port}{path}")
        assert response is None or response.status_code in (401, 403, 404), (path, response.status_code)
        if response is not None:
            assert stack.s3_secret_key.get_secret_value() not in response.text


def test_the_filer_lists_reads_and_writes_nothing_over_http(stack, versioned_object):
    """Its HTTP API is off (404); were it on, it would want a signed token (401)."""
    key, _ = versioned_object
    filer = f"http://127.0.0.1:{stack.s3_filer_port}"
    listing = _get(f"{filer}/buckets/raw/", headers={"Accept": "application/json"})
    read = _get(f"{filer}/buckets/raw/{key}")
    write = _get(f"{filer}/buckets/raw/security-probe/planted.txt", method="PUT", content=b"planted")
    for response in (listing, read, write):
        assert response is None or response.status_code in (401, 404), response.text[:200]
        assert response is None or (b"version two" not in response.content and key not in response.text)
    with pytest.raises(ClientError):
        get_client(stack).head_object(Bucket="raw", Key="security-probe/planted.txt")


def test_the_master_http_api_is_off(stack):
    master = f"http://127.0.0.1:{stack.s3_master_port}"
    collections = [b["Name"] for b in get_client(stack).list_buckets()["Buckets"]]
    for path in ("/dir/assign", "/vol/grow?count=1", "/vol/vacuum", "/dir/status", "/vol/status",
                 f"/col/delete?collection={collections[0]}"):
        response = _get(f"{master}{path}")
        assert response is None or response.status_code == 404, (path, response.status_code, response.text[:200])
    submitted = _get(f"{master}/submit", method="POST", files={"file": ("f.txt", b"planted")})
    assert submitted is None or submitted.status_code == 404
    assert get_client(stack).list_objects_v2(Bucket=collections[0], MaxKeys=1)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_the_volume_server_needs_a_signed_token(stack):
    volume = f"http://127.0.0.1:{stack.s3_volume_port}"
    read = _get(f"{volume}/1,0100000000")
    write = _get(f"{volume}/1,0100000001", method="POST", files={"file": ("f.txt", b"planted")})
    for response in (read, write):
        assert response is not None and response.status_code == 401, response and response.text[:200]


def test_ingest_writes_raw_but_cannot_delete_versions_or_change_versioning(stack, versioned_object, unique):
    key, first = versioned_object
    ingest = get_client(stack, "ingest")
    ingest.put_object(Bucket="raw", Key=f"security-probe/{unique}-ingest.txt", Body=b"allowed")
    with pytest.raises(ClientError) as deleted:
        ingest.delete_object(Bucket="raw", Key=key, VersionId=first)
    assert deleted.value.response["Error"]["Code"] == "AccessDenied"
    for configuration in ({"Status": "Suspended"}, {"Status": "Enabled"}):
        with pytest.raises(ClientError) as changed:
            ingest.put_bucket_versioning(Bucket="raw", VersioningConfiguration=configuration)
        assert changed.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as read:
        ingest.get_object(Bucket="raw", Key=key)
    assert read.value.response["Error"]["Code"] == "AccessDenied"
    admin = get_client(stack)
    assert admin.get_object(Bucket="raw", Key=key, VersionId=first)["Body"].read() == b"version one"
    assert admin.get_bucket_versioning(Bucket="raw")["Status"] == "Enabled"
    admin.delete_object(Bucket="raw", Key=f"security-probe/{unique}-ingest.txt")


def test_the_analyst_reads_processed_only(stack, unique):
    admin, analyst = get_client(stack), get_client(stack, "analyst")
    key = f"security-probe/{unique}-analyst.txt"
    admin.put_object(Bucket="processed", Key=key, Body=b"report")
    try:
        assert analyst.get_object(Bucket="processed", Key=key)["Body"].read() == b"report"
        for attempt in (lambda: analyst.put_object(Bucket="processed", Key=key, Body=b"overwrite"),
                        lambda: analyst.delete_object(Bucket="processed", Key=key),
                        lambda: analyst.list_objects_v2(Bucket="raw")):
            with pytest.raises(ClientError) as denied:
                attempt()
            assert denied.value.response["Error"]["Code"] == "AccessDenied"
    finally:
        for version in admin.list_object_versions(Bucket="processed", Prefix=key).get("Versions", []):
            admin.delete_object(Bucket="processed", Key=key, VersionId=version["VersionId"])
