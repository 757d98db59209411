"""Typed configuration: one place, overridable by LAKELAB_* environment variables or `.env`."""

from __future__ import annotations

import hashlib
import os
import tomllib
from functools import cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from dotenv import dotenv_values
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Endpoints, credentials and folders. Application code reads endpoints from here and never
    needs to know whether the stack runs natively or in docker compose."""

    model_config = SettingsConfigDict(
        env_prefix="LAKELAB_",
        env_file=(ROOT / ".env.sample", ROOT / ".env"),
        extra="ignore",
    )

    mode: Literal["native", "compose"] = "native"
    cache_dir: Path = Path("~/.cache/lakelab").expanduser()
    state_dir: Path = ROOT / ".lakelab"

    s3_endpoint: str = "http://127.0.0.1:8333"
    # SeaweedFS's own servers beside its S3 gateway: the filer (object events come from its
    # metadata stream), the master, the volume server and the admin server (its UI is off); each
    # also listens on its port + 10000 (gRPC)
    s3_filer_port: int = 8888
    s3_master_port: int = 9333
    s3_volume_port: int = 9340
    s3_admin_port: int = 23646
    s3_region: str = "us-east-1"
    s3_access_key: str = "lakelab"
    s3_secret_key: SecretStr = SecretStr("lakelab-secret-change-me")

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_controller_port: int = 9093

    pg_host: str = "127.0.0.1"
    pg_port: int = 5433
    pg_user: str = "lakelab"
    pg_password: SecretStr = SecretStr("lakelab-pg-change-me")

    metastore_uri: str = "thrift://127.0.0.1:9083"
    trino_url: str = "http://127.0.0.1:8080"
    connect_url: str = "http://127.0.0.1:8083"
    api_url: str = "http://127.0.0.1:8000"
    gateway_url: str = "http://127.0.0.1:8088"
    # JupyterLab, an optional service (`lakelab up jupyter`); 8888 is SeaweedFS's filer. It starts
    # only with a token from the env file: no working token ships with the project.
    jupyter_url: str = "http://127.0.0.1:8890"
    jupyter_token: SecretStr = SecretStr("")

    api_keys: str = "dev-key-change-me"
    # Query API limits (issue 6). A page never holds more than api_page_rows rows; a query never
    # returns more than api_max_rows rows over all its pages; a request waits at most
    # api_query_timeout_s for Trino, then the Trino query is cancelled.
    api_page_rows: int = 1000
    api_max_rows: int = 100_000
    api_query_timeout_s: float = 60.0
    api_cursor_ttl_s: float = 300.0
    api_max_open_cursors: int = 64
    api_max_body_bytes: int = 1_048_576
    api_trino_threads: int = 32

    # Lab B's Firehose stand-in flushes a buffer at this size or age; alerts may also be POSTed
    firehose_buffer_bytes: int = 1_048_576
    firehose_buffer_seconds: float = 60.0
    alert_webhook: str = ""

    startup_timeout_s: float = 240.0
    spark_driver_memory: str = "2g"  # compose's Spark container sets less, to fit its memory limit

    @property
    def api_key_list(self) -> list[str]:
        """The accepted `X-API-Key` values: `api_keys` split on commas, blanks dropped."""
        return [key.strip() for key in self.api_keys.split(",") if key.strip()]

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pids_dir(self) -> Path:
        return self.state_dir / "pids"

    @property
    def postgres_data_dir(self) -> Path:
        # PostgreSQL refuses to run as root, so as root it runs as the `postgres` user, who may
        # not be able to reach a checkout under /root: keep its data in a place it owns.
        if os.geteuid() == 0:
            checkout_id = hashlib.sha1(str(self.state_dir).encode()).hexdigest()[:12]
            return Path("/var/lib/lakelab") / checkout_id / "postgres"
        return self.state_dir / "data" / "postgres"

    def data_dir(self, service: str) -> Path:
        return self.state_dir / "data" / service

    def run_dir(self, service: str) -> Path:
        """Rendered configuration of one service."""
        return self.state_dir / "run" / service

    def port_of(self, url: str) -> int:
        parsed = urlparse(url if "://" in url else f"tcp://{url}")
        assert parsed.port is not None, f"no port in {url}"
        return parsed.port

    def host_of(self, url: str) -> str:
        parsed = urlparse(url if "://" in url else f"tcp://{url}")
        assert parsed.hostname is not None, f"no host in {url}"
        return parsed.hostname

    @property
    def s3_filer_address(self) -> str:
        """SeaweedFS's filer, on the host of its S3 gateway."""
        return f"{self.host_of(self.s3_endpoint)}:{self.s3_filer_port}"

    def child_env(self) -> dict[str, str]:
        """Environment for every service process: config files reference these names
        (Trino catalogs as ${ENV:...}, nginx and metastore templates as ${...})."""
        values = {
            f"LAKELAB_{name.upper()}": (v.get_secret_value() if isinstance(v, SecretStr) else str(v))
            for name, v in self.model_dump().items()
        }
        values["AWS_ACCESS_KEY_ID"] = self.s3_access_key
        values["AWS_SECRET_ACCESS_KEY"] = self.s3_secret_key.get_secret_value()
        values["AWS_REGION"] = self.s3_region
        return {**environment(), **values}


def environment() -> dict[str, str]:
    """The process environment over the env files, as child processes and users' keys see it."""
    merged: dict[str, str] = {}
    for env_file in Settings.model_config["env_file"]:
        if Path(env_file).exists():
            merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    return {**merged, **os.environ}


@cache
def versions() -> dict:
    with open(ROOT / "versions.toml", "rb") as f:
        return tomllib.load(f)


@cache
def get_settings() -> Settings:
    return Settings()
