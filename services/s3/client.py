"""The S3 client of the stack (SeaweedFS in both modes): boto3 with path-style addressing, as the
admin or as one of the users declared in resources.yaml; and the one parser of S3 URIs."""

from __future__ import annotations

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from lakelab.resources import resources
from lakelab.settings import Settings


def get_client(settings: Settings, user: str | None = None):
    """A boto3 S3 client: the admin identity, or the declared `user`'s keys (KeyError if unknown)."""
    if user:
        access_key, secret_key = resources().user(user).keys()
    else:
        access_key, secret_key = settings.s3_access_key, settings.s3_secret_key.get_secret_value()
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        region_name=settings.s3_region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}, connect_timeout=3, read_timeout=30),
    )


def parse_uri(uri: str) -> tuple[str, str]:
    """(bucket, key or prefix) of `s3://bucket/key` or `s3a://bucket/key`; ValueError otherwise."""
    scheme, separator, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if not separator or scheme not in ("s3", "s3a") or not bucket:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    return bucket, key


def delete_prefix(settings: Settings, uri: str) -> None:
    """Delete everything under `s3a://bucket/prefix/`, folders included: SeaweedFS keeps emptied
    folders, and S3A would take a leftover `<table>/.hoodie/` for an existing Hudi table."""
    bucket, prefix = parse_uri(uri)
    prefix = prefix.strip("/") + "/"
    s3 = get_client(settings)
    pages = s3.get_paginator("list_objects_v2")
    for page in pages.paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})

    def folders(under: str) -> list[str]:  # deepest first
        found: list[str] = []
        for page in pages.paginate(Bucket=bucket, Prefix=under, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                found += [*folders(common["Prefix"]), common["Prefix"]]
        return found

    for folder in [*folders(prefix), prefix]:
        s3.delete_object(Bucket=bucket, Key=folder)


def describe_error(exc: Exception, user: str | None = None) -> str:
    """One line for an S3 failure: the error code and HTTP status, and who asked."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"{code} (HTTP {status}) as user {user or 'admin'}"
    if isinstance(exc, KeyError):  # an undeclared user
        return str(exc.args[0])
    return str(exc)
