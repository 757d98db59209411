"""SeaweedFS's own credentials, so that its S3 gateway (with the identities and policies of
resources.yaml) is the only way to the data: JWT signing keys for the filer's and the volume
server's HTTP APIs, and mutual TLS (the stack's CA, lakelab/tls.py) on every gRPC port. They are
handed to SeaweedFS's processes by environment (WEED_*), never on a command line."""

from __future__ import annotations

import json
import secrets

from lakelab import tls
from lakelab.settings import Settings
from services.base import write_private

JWT_KEYS = ("WEED_JWT_SIGNING_KEY", "WEED_JWT_SIGNING_READ_KEY", "WEED_JWT_FILER_SIGNING_KEY",
            "WEED_JWT_FILER_SIGNING_READ_KEY")
GRPC_COMPONENTS = ("MASTER", "VOLUME", "FILER", "S3", "ADMIN", "WORKER")
HOSTS = ("127.0.0.1", "localhost", "s3")  # natively, and the compose service's name


def client_env(settings: Settings) -> dict[str, str]:
    """What a SeaweedFS client (`weed filer.meta.tail`) needs to pass the gRPC ports' mutual TLS."""
    cert, key = tls.certificate(settings, "seaweedfs", HOSTS)
    return {"WEED_GRPC_CA": str(tls.ca_file(settings)), "WEED_GRPC_CLIENT_CERT": str(cert),
            "WEED_GRPC_CLIENT_KEY": str(key)}


def server_env(settings: Settings) -> dict[str, str]:
    """The SeaweedFS servers' JWT keys (made once) and gRPC certificates."""
    keys = settings.state_dir / "secrets" / "seaweedfs-jwt.json"
    if not keys.exists():
        write_private(keys, json.dumps({name: secrets.token_urlsafe(32) for name in JWT_KEYS}))
    env = {**json.loads(keys.read_text()), **client_env(settings)}
    for component in GRPC_COMPONENTS:
        env[f"WEED_GRPC_{component}_CERT"] = env["WEED_GRPC_CLIENT_CERT"]
        env[f"WEED_GRPC_{component}_KEY"] = env["WEED_GRPC_CLIENT_KEY"]
    return env
