"""Kafka Connect with the Debezium PostgreSQL connector (jars from Maven Central)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from lakelab.install import maven_classpath
from lakelab.settings import Settings, versions
from services.base import NotReady, Service, render
from services.connect.client import connector_plugins
from services.kafka.service import java_command

HERE = Path(__file__).parent
DEBEZIUM_POSTGRES = "io.debezium.connector.postgresql.PostgresConnector"


def _worker_classpath(settings: Settings) -> str:
    v = versions()["kafka"]["version"]
    jars = maven_classpath(settings, "kafka-connect", [
        f"org.apache.kafka:connect-runtime:{v}",
        f"org.apache.kafka:connect-json:{v}",
        f"org.apache.kafka:connect-transforms:{v}",
        "org.apache.logging.log4j:log4j-core:2.24.3",
        "org.apache.logging.log4j:log4j-slf4j-impl:2.24.3",
        "com.fasterxml.jackson.dataformat:jackson-dataformat-yaml:2.19.0",
    ])
    return ":".join(map(str, jars))


def plugin_dir(settings: Settings) -> Path:
    return settings.cache_dir / "connect-plugins"


def _install(settings: Settings) -> None:
    _worker_classpath(settings)
    version = versions()["debezium"]["version"]
    jars = maven_classpath(settings, "debezium-postgres", [f"io.debezium:debezium-connector-postgres:{version}"])
    target = plugin_dir(settings) / f"debezium-connector-postgres-{version}"
    target.mkdir(parents=True, exist_ok=True)
    # The worker provides Kafka's own API and logging; a plugin must not bring second copies.
    provided = ("/org/apache/kafka/", "/org/slf4j/")
    for jar in jars:
        link = target / jar.name
        # relative, so the cache can be copied or restored elsewhere (an absolute link points
        # where it was made)
        relative = os.path.relpath(jar, target)
        if not any(p in str(jar) for p in provided) and not (link.is_symlink() and os.readlink(link) == relative):
            link.unlink(missing_ok=True)
            link.symlink_to(relative)


def _properties(settings: Settings) -> Path:
    return settings.run_dir("connect") / "connect-distributed.properties"


def _prepare(settings: Settings) -> None:
    render(HERE / "connect-distributed.properties", _properties(settings), {
        "LAKELAB_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "CONNECT_PORT": str(settings.port_of(settings.connect_url)),
        "CONNECT_BIND_HOST": settings.bind_host,
        "CONNECT_HOST": settings.host_of(settings.connect_url),
        "CONNECT_PLUGIN_PATH": str(plugin_dir(settings)),
    })


def _command(settings: Settings) -> list[str]:
    return java_command(
        settings, "connect", _worker_classpath(settings), "512m",
        ["org.apache.kafka.connect.cli.ConnectDistributed", str(_properties(settings))],
    )


def _check(settings: Settings) -> None:
    try:
        plugins = connector_plugins(settings)
    except httpx.HTTPError as exc:
        raise NotReady(f"Connect REST API not answering: {exc}") from exc
    if DEBEZIUM_POSTGRES not in plugins:
        raise NotReady(f"Connect runs without Debezium's connector; plugins: {plugins}")


SERVICE = Service(
    name="connect",
    summary="Kafka Connect + Debezium PostgreSQL",
    endpoint=lambda s: s.connect_url,
    install=_install,
    prepare=_prepare,
    command=_command,
    check=_check,
    depends_on=("kafka",),
    secrets=("pg_password",),  # the connector files' ${env:LAKELAB_PG_PASSWORD}
)
