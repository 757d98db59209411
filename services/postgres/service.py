"""PostgreSQL from Debian: a project-owned cluster with logical WAL (Debezium's source, the
metastore's backend)."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from lakelab.install import ensure_debian_packages
from lakelab.resources import Resources
from lakelab.settings import Settings, versions
from services.base import NotReady, Service
from services.postgres.client import get_client

HERE = Path(__file__).parent


def bin_dir() -> Path:
    return Path(f"/usr/lib/postgresql/{versions()['postgresql']['version']}/bin")


def _install(settings: Settings) -> None:
    ensure_debian_packages({str(bin_dir() / "postgres"): f"postgresql-{versions()['postgresql']['version']}"})


def _owner() -> tuple[int, int] | None:
    """As root the cluster belongs to the `postgres` user (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


# initdb lets TCP clients in from loopback only
NETWORK_CLIENTS = "host all all all scram-sha-256  # lakelab: the clients of a container's network\n"


def _admit_network_clients(settings: Settings) -> None:
    """Listening beyond loopback (in a container), let the network's clients in, with a password."""
    hba = settings.postgres_data_dir / "pg_hba.conf"
    if not settings.listens_on_loopback and NETWORK_CLIENTS not in hba.read_text():
        with hba.open("a") as rules:
            rules.write(NETWORK_CLIENTS)


def _prepare(settings: Settings) -> None:
    data = settings.postgres_data_dir
    if (data / "PG_VERSION").exists():
        _admit_network_clients(settings)
        return
    data.mkdir(parents=True, exist_ok=True)
    owner = _owner()
    with tempfile.NamedTemporaryFile("w", dir=data.parent, delete=False) as pwfile:
        pwfile.write(settings.pg_password.get_secret_value())
    try:
        if owner:
            for path in (data, Path(pwfile.name)):
                os.chown(path, *owner)
        result = subprocess.run(
            [str(bin_dir() / "initdb"), "-D", str(data), "-U", settings.pg_user, f"--pwfile={pwfile.name}",
             "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"],
            capture_output=True, text=True, user=owner[0] if owner else None, group=owner[1] if owner else None,
        )
    finally:
        os.unlink(pwfile.name)
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed for {data}:\n{result.stderr.strip()}")
    _admit_network_clients(settings)


def _command(settings: Settings) -> list[str]:
    return [
        str(bin_dir() / "postgres"), "-D", str(settings.postgres_data_dir),
        "-c", f"listen_addresses={settings.bind_host}",
        "-c", f"port={settings.pg_port}",
        "-c", f"unix_socket_directories={settings.postgres_data_dir}",
        "-c", "wal_level=logical",
        "-c", "max_wal_senders=10",
        "-c", "max_replication_slots=10",
        "-c", "shared_buffers=128MB",
    ]


def _check(settings: Settings) -> None:
    try:
        with get_client(settings) as conn:
            level = conn.execute("SHOW wal_level").fetchone()[0]
    except psycopg.OperationalError as exc:
        raise NotReady(f"PostgreSQL refused a query: {str(exc).strip()}") from exc
    if level != "logical":
        raise NotReady(f"PostgreSQL runs with wal_level={level}, Debezium needs logical")


def _bootstrap(settings: Settings, declared: Resources) -> None:
    with get_client(settings, autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in declared.postgres_databases:
            if name not in existing:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


SERVICE = Service(
    name="postgres",
    summary="PostgreSQL, wal_level=logical",
    endpoint=lambda s: f"postgresql://{s.pg_host}:{s.pg_port}",
    install=_install,
    prepare=_prepare,
    command=_command,
    check=_check,
    bootstrap=_bootstrap,
    run_as_when_root="postgres",
    stop_signal=signal.SIGINT,  # the fast shutdown; on SIGTERM it waits for every client to leave
    config_secrets=("pg_password",),  # the superuser's, given to initdb in a private file
)
