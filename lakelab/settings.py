"""Typed configuration: one place, read from LAKELAB_* environment variables, then `.env` (whose
credentials `lakelab` generates at random on first use: see lakelab/secrets.py)."""

from __future__ import annotations

import uuid
import os
import tomllib
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from dotenv import dotenv_values
from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
# A process is given only the secrets it uses (Settings.child_env); the others read as empty.
NO_SECRET = SecretStr("")
LOOPBACK = "127.0.0.1"


class Settings(BaseSettings):
    """Endpoints, credentials and folders. Application code reads endpoints from here and never
    needs to know whether the stack runs natively or in docker compose."""

    model_config = SettingsConfigDict(
        env_prefix="LAKELAB_",
        env_file=ROOT / ".env",
        extra="ignore",
    )

    mode: Literal["native", "compose"] = "native"
    cache_dir: Path = Path("~/.cache/lakelab").expanduser()
    state_dir: Path = ROOT / ".lakelab"
    # Where the servers listen: loopback natively; every interface of its container in compose
    # mode (the image sets 0.0.0.0), where only the ports published on 127.0.0.1 reach the host.
    bind_host: str = LOOPBACK
    # No secret is ever made inside a container: compose hands each one the secrets of its service.
    generate_secrets: bool = True
    # JVMs load their classes from archives of them made at their first exit (AppCDS, kept in
    # the cache folder). The image turns this off: a container's archive would go with it.
    class_archives: bool = True

    # Each server's port: natively where it listens, in compose mode the port published on the
    # host's 127.0.0.1 (docker-compose.yml reads the same LAKELAB_*_PORT names). The endpoints
    # below default to 127.0.0.1 with these ports; inside the compose network the image's
    # environment names each service instead (http://s3:8333, ...).
    s3_port: int = 8333
    kafka_port: int = 9092
    pg_port: int = 5433
    metastore_port: int = 9083
    trino_port: int = 8443
    connect_port: int = 8083
    api_port: int = 8000
    gateway_port: int = 8088
    aws_port: int = 4566
    jupyter_port: int = 8890

    s3_endpoint: str = ""  # default http://127.0.0.1:<s3_port>
    # SeaweedFS's own servers beside its S3 gateway: the filer (object events come from its
    # metadata stream, over its gRPC port), the master, the volume server and the admin server
    # (its UI is off); each of the last three also listens on its port + 10000 (gRPC)
    s3_filer_port: int = 8888
    s3_filer_grpc_port: int = 18888
    s3_master_port: int = 9333
    s3_volume_port: int = 9340
    s3_admin_port: int = 23646
    s3_region: str = "us-east-1"
    s3_access_key: str = "lakelab"
    s3_secret_key: SecretStr = NO_SECRET

    kafka_bootstrap: str = ""  # default 127.0.0.1:<kafka_port>
    # Clients outside the compose network (the host) get their own listener, advertised as this
    # address; empty natively, where kafka_bootstrap serves everyone
    kafka_external_bootstrap: str = ""
    kafka_controller_port: int = 9093

    pg_host: str = LOOPBACK
    pg_user: str = "lakelab"
    pg_password: SecretStr = NO_SECRET

    metastore_uri: str = ""  # default thrift://127.0.0.1:<metastore_port>
    trino_url: str = ""  # default https://127.0.0.1:<trino_port>
    trino_internal_port: int = 8080  # the nodes' own HTTP port
    # -Xmx of each Trino node (a node may use half of it for one query). 1G, as compose has always
    # run it, keeps the stack plus a running lab job under 6 GiB (docs/bench.md, memory)
    trino_heap: str = "1G"
    trino_coordinator: bool = True  # false: a worker node of the coordinator at trino_url
    # Trino asks every client for a password: the stack's own user (jobs, tools, tests), the
    # query API's read-only user; nodes of one cluster share a secret
    trino_user: str = "lakelab"
    trino_password: SecretStr = NO_SECRET
    trino_api_user: str = "api"
    trino_api_password: SecretStr = NO_SECRET
    trino_shared_secret: SecretStr = NO_SECRET
    connect_url: str = ""  # default http://127.0.0.1:<connect_port>
    api_url: str = ""  # default http://127.0.0.1:<api_port>
    gateway_url: str = ""  # default http://127.0.0.1:<gateway_port>
    # The AWS-compatible endpoint (aws/gateway/): boto3 and the AWS CLI with AWS_ENDPOINT_URL set to it
    aws_endpoint_url: str = ""  # default http://127.0.0.1:<aws_port>
    # JupyterLab, an optional service (`lakelab up jupyter`); 8888 is SeaweedFS's filer. Its token
    # is generated into the env file like every secret: none ships with the project.
    jupyter_url: str = ""  # default http://127.0.0.1:<jupyter_port>
    jupyter_token: SecretStr = NO_SECRET

    api_keys: SecretStr = NO_SECRET  # comma separated
    # Query API limits (issue 6). A page never holds more than api_page_rows rows; a query never
    # returns more than api_max_rows rows over all its pages; a request waits at most
    # api_query_timeout_s for Trino, then the Trino query is cancelled.
    api_page_rows: int = 1000
    api_max_rows: int = 100_000
    api_query_timeout_s: float = 60.0
    api_cursor_ttl_s: float = 300.0
    api_max_open_cursors: int = 64
    # One key may hold at most this many open cursors; its next one closes its own oldest.
    api_cursors_per_key: int = 16
    # A page stops short of api_page_rows when its rows reach this many bytes (as JSON).
    api_page_bytes: int = 8_388_608
    # The read-only check: statements longer than this are refused, and parsing (off the event
    # loop) that takes longer than the timeout is abandoned with a 400.
    api_max_sql_chars: int = 100_000
    api_sql_check_timeout_s: float = 5.0
    # Per-key request rate, enforced by the API itself as well as by Nginx in front of it.
    api_rate_per_s: float = 20.0
    api_rate_burst: int = 40
    api_max_body_bytes: int = 1_048_576
    api_trino_threads: int = 32
    # The dashboard's Kinesis Data Generator: jobs run in the API process, at most
    # api_kdg_max_jobs_per_key at a time for one API key, each at most api_kdg_max_rate records/s
    api_kdg_max_jobs_per_key: int = 2
    api_kdg_max_rate: float = 500.0
    # The lake console reads at most this many objects (or versions) per bucket listing; past it,
    # counts are marked as truncated
    api_console_max_keys: int = 10_000

    # Lab B's Firehose stand-in flushes a buffer at this size or age; alerts may also be POSTed
    firehose_buffer_bytes: int = 1_048_576
    firehose_buffer_seconds: float = 60.0
    alert_webhook: str = ""

    # Athena on Trino (aws/athena/provider.py): queries run at once, the rest wait QUEUED
    athena_max_concurrent_queries: int = 4

    startup_timeout_s: float = 240.0
    # Where Spark jobs run: in the job's own process (local[*]), or on a standalone cluster such as
    # compose's `scale` profile runs (spark://spark-master:7077, its master and worker services)
    spark_master: str = "local[*]"
    startup_poll_s: float = 0.1  # readiness checks while a service starts
    spark_driver_memory: str = "1g"  # the lab jobs run in local mode: executors share this heap
    spark_executor_memory: str = "768m"
    spark_standalone_url: str = "spark://127.0.0.1:7077"  # the master service's own address
    spark_master_ui_port: int = 8090
    spark_worker_ui_port: int = 8091
    spark_worker_cores: int = 2
    spark_worker_memory: str = "1g"

    # Compose mode: the project name (containers, network, volumes), the image every service runs,
    # and the extra CA certificates (*.crt) its build trusts, as behind a TLS-intercepting proxy
    # (given to the build as a secret: never in a layer or the build context)
    compose_project: str = "lakelab"
    compose_image: str = "lakelab/lakelab:latest"
    extra_ca_dir: Path = Path("/usr/local/share/ca-certificates")

    @field_validator("cache_dir", "state_dir", "extra_ca_dir")
    @classmethod
    def _absolute(cls, folder: Path) -> Path:
        """`~` expanded and a relative folder taken from where `lakelab` runs, once: the services
        and Maven run in folders of their own and would each read it against theirs."""
        return folder.expanduser().absolute()

    @model_validator(mode="after")
    def _endpoints_from_ports(self) -> Settings:
        """An endpoint left unset is the server's port on 127.0.0.1."""
        defaults = {
            "s3_endpoint": f"http://{LOOPBACK}:{self.s3_port}",
            "kafka_bootstrap": f"{LOOPBACK}:{self.kafka_port}",
            "metastore_uri": f"thrift://{LOOPBACK}:{self.metastore_port}",
            "trino_url": f"https://{LOOPBACK}:{self.trino_port}",
            "connect_url": f"http://{LOOPBACK}:{self.connect_port}",
            "api_url": f"http://{LOOPBACK}:{self.api_port}",
            "gateway_url": f"http://{LOOPBACK}:{self.gateway_port}",
            "aws_endpoint_url": f"http://{LOOPBACK}:{self.aws_port}",
            "jupyter_url": f"http://{LOOPBACK}:{self.jupyter_port}",
        }
        for name, default in defaults.items():
            if not getattr(self, name):
                setattr(self, name, default)
        return self

    @property
    def listens_on_loopback(self) -> bool:
        """Whether the servers listen on loopback only (native mode) rather than on a container's
        network, where peers reach a server by its host name."""
        return self.bind_host in (LOOPBACK, "localhost", "::1")

    @property
    def api_key_list(self) -> list[str]:
        """The accepted `X-API-Key` values: `api_keys` split on commas, blanks dropped."""
        return [key.strip() for key in self.api_keys.get_secret_value().split(",") if key.strip()]

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
        # Named by an id kept in the state folder, not by the folder's path: a new clone at the path
        # of a deleted one (a CI checkout) gets a new database, not the old one with its old password.
        if os.geteuid() == 0:
            return Path("/var/lib/lakelab") / self._state_id() / "postgres"
        return self.state_dir / "data" / "postgres"

    def make_state_dir(self) -> Path:
        """The state folder, made the owner's only (0700) before anything writes into it: a
        service's `mkdir(parents=True)` of a data folder would make it with the umask's 0755. One
        that exists keeps its mode: the image makes its own 0755 for the `postgres` user below it."""
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.state_dir

    def _state_id(self) -> str:
        marker = self.state_dir / "state-id"
        if not marker.exists():
            self.make_state_dir()
            draft = self.state_dir / f"state-id.{os.getpid()}"
            draft.write_text(uuid.uuid4().hex[:12])
            try:
                os.link(draft, marker)  # atomic: the first process to get here names it
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        return marker.read_text().strip()

    def data_dir(self, service: str) -> Path:
        return self.state_dir / "data" / service

    def temp_dir(self, owner: str) -> Path:
        """Temporary files of one process kind (its JVM's `java.io.tmpdir`): kept with the stack's
        state, so `lakelab reset` removes what a killed process left, instead of the machine's /tmp."""
        return self.state_dir / "tmp" / owner

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
        """SeaweedFS's filer, on the host of its S3 gateway, as `host:port.grpcPort` (SeaweedFS's
        spelling of a server whose gRPC port is not its port + 10000)."""
        return f"{self.host_of(self.s3_endpoint)}:{self.s3_filer_port}.{self.s3_filer_grpc_port}"

    def secret_names(self) -> set[str]:
        """The environment names of every secret: the settings' and the declared users' keys."""
        names = {f"LAKELAB_{name.upper()}" for name, field in type(self).model_fields.items()
                 if field.annotation is SecretStr}
        return names | {name for name in environment() if name.startswith("LAKELAB_") and name.endswith("_SECRET_KEY")}

    def child_env(self, secrets: Iterable[str] = ()) -> dict[str, str]:
        """Environment of a service process: every setting as LAKELAB_* (config files reference
        them: Trino catalogs as ${ENV:...}, templates as ${...}), but of the secrets only those
        named in `secrets` (setting names, e.g. "pg_password"); no other secret reaches it."""
        values = {
            f"LAKELAB_{name.upper()}": (v.get_secret_value() if isinstance(v, SecretStr) else str(v))
            for name, v in self.model_dump().items()
        }
        hidden = self.secret_names() - {f"LAKELAB_{name.upper()}" for name in secrets}
        inherited = {k: v for k, v in os.environ.items() if k not in hidden and not k.startswith("AWS_")}
        return {**inherited, **{k: v for k, v in values.items() if k not in hidden}}


def environment() -> dict[str, str]:
    """The process environment over `.env`, as child processes and users' keys see it."""
    env_file = Path(Settings.model_config["env_file"])
    merged = {k: v for k, v in dotenv_values(env_file).items() if v is not None} if env_file.exists() else {}
    return {**merged, **os.environ}


@cache
def versions() -> dict:
    with open(ROOT / "versions.toml", "rb") as f:
        return tomllib.load(f)


@cache
def get_settings() -> Settings:
    return Settings()
