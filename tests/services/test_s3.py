import pytest
from botocore.exceptions import ClientError

from services.s3.client import get_client as s3_client

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]


def test_declared_buckets_and_prefixes_exist(settings):
    s3 = s3_client(settings)
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {"raw", "processed", "datalake", "warehouse"} <= names
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="datalake").get("Contents", [])}
    assert {"raw-zone/", "processed-zone/"} <= keys


def test_put_get_list_roundtrip(settings, unique):
    s3 = s3_client(settings)
    key = f"tests/{unique}/hello.txt"
    s3.put_object(Bucket="raw", Key=key, Body=b"hello lake")
    assert s3.get_object(Bucket="raw", Key=key)["Body"].read() == b"hello lake"
    listed = s3.list_objects_v2(Bucket="raw", Prefix=f"tests/{unique}/")
    assert [o["Key"] for o in listed["Contents"]] == [key]


def test_versioning_keeps_old_versions_and_delete_markers(settings, unique):
    s3 = s3_client(settings)
    assert s3.get_bucket_versioning(Bucket="raw")["Status"] == "Enabled"
    key = f"tests/{unique}/versioned.csv"
    first = s3.put_object(Bucket="raw", Key=key, Body=b"v1")["VersionId"]
    s3.put_object(Bucket="raw", Key=key, Body=b"v2")
    assert s3.get_object(Bucket="raw", Key=key)["Body"].read() == b"v2"
    assert s3.get_object(Bucket="raw", Key=key, VersionId=first)["Body"].read() == b"v1"

    marker = s3.delete_object(Bucket="raw", Key=key)
    assert marker.get("DeleteMarker") is True
    with pytest.raises(ClientError):
        s3.get_object(Bucket="raw", Key=key)
    s3.delete_object(Bucket="raw", Key=key, VersionId=marker["VersionId"])
    assert s3.get_object(Bucket="raw", Key=key)["Body"].read() == b"v2"


def test_declared_users_are_limited_to_their_buckets(settings, unique):
    analyst = s3_client(settings, "analyst")
    ingest = s3_client(settings, "ingest")
    key = f"tests/{unique}/limited.txt"

    ingest.put_object(Bucket="raw", Key=key, Body=b"in")
    with pytest.raises(ClientError) as denied_write:
        ingest.put_object(Bucket="processed", Key=key, Body=b"no")
    assert denied_write.value.response["Error"]["Code"] == "AccessDenied"

    s3_client(settings).put_object(Bucket="processed", Key=key, Body=b"report")
    assert analyst.get_object(Bucket="processed", Key=key)["Body"].read() == b"report"
    with pytest.raises(ClientError) as denied_read:
        analyst.get_object(Bucket="raw", Key=key)
    assert denied_read.value.response["Error"]["Code"] == "AccessDenied"
