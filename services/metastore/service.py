"""Hive Metastore (the Glue Data Catalog stand-in): the Hive 2.3 metastore jars that ship in
pyspark, run as a Thrift service, backed by the stack's PostgreSQL, with s3a:// locations."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlparse

from thrift.protocol import TBinaryProtocol
from thrift.Thrift import TMessageType, TType
from thrift.transport import TSocket, TTransport
from thrift.transport.TTransport import TTransportException

from lakelab.install import maven_artifacts
from lakelab.service import NotReady, Service, java17, render
from lakelab.settings import Settings, versions
from services.spark.service import pyspark_jars_dir, s3a_jars

HERE = Path(__file__).parent
# TSocket logs every refused connection while the metastore starts; NotReady reports it instead.
logging.getLogger("thrift.transport.TSocket").setLevel(logging.CRITICAL)


def _jdbc_driver(settings: Settings) -> list[Path]:
    return maven_artifacts(settings, "postgresql-jdbc", [f"org.postgresql:postgresql:{versions()['postgresql']['jdbc']}"])


def _install(settings: Settings) -> None:
    s3a_jars(settings)
    _jdbc_driver(settings)


def _conf_dir(settings: Settings) -> Path:
    return settings.run_dir("metastore") / "conf"


def _prepare(settings: Settings) -> None:
    env = settings.child_env()
    values = {k: v for k, v in env.items() if k.startswith("LAKELAB_")}
    render(HERE / "hive-site.xml", _conf_dir(settings) / "hive-site.xml", values).chmod(0o600)


def _command(settings: Settings) -> list[str]:
    classpath = [str(_conf_dir(settings)), f"{pyspark_jars_dir()}/*", *map(str, s3a_jars(settings)),
                 *map(str, _jdbc_driver(settings))]
    return [
        java17(), "-Xms256m", "-Xmx512m", f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
        "-cp", ":".join(classpath), "org.apache.hadoop.hive.metastore.HiveMetaStore",
        "-p", str(urlparse(settings.metastore_uri).port),
    ]


def list_databases(settings: Settings) -> list[str]:
    """`get_all_databases` over Thrift: the smallest real metastore call."""
    uri = urlparse(settings.metastore_uri)
    socket = TSocket.TSocket(uri.hostname, uri.port)
    socket.setTimeout(5000)
    transport = TTransport.TBufferedTransport(socket)
    protocol = TBinaryProtocol.TBinaryProtocol(transport)
    transport.open()
    try:
        protocol.writeMessageBegin("get_all_databases", TMessageType.CALL, 1)
        protocol.writeStructBegin("get_all_databases_args")
        protocol.writeFieldStop()
        protocol.writeStructEnd()
        protocol.writeMessageEnd()
        transport.flush()
        _, message_type, _ = protocol.readMessageBegin()
        if message_type == TMessageType.EXCEPTION:
            raise NotReady("metastore answered get_all_databases with an exception")
        databases: list[str] | None = None
        protocol.readStructBegin()
        while True:
            _, field_type, field_id = protocol.readFieldBegin()
            if field_type == TType.STOP:
                break
            if field_id == 0 and field_type == TType.LIST:
                _, size = protocol.readListBegin()
                databases = [protocol.readString() for _ in range(size)]
                protocol.readListEnd()
            else:
                protocol.skip(field_type)
            protocol.readFieldEnd()
        if databases is None:
            raise NotReady("metastore could not list databases (MetaException)")
        return databases
    finally:
        transport.close()


def _check(settings: Settings) -> None:
    try:
        list_databases(settings)
    except TTransportException as exc:
        raise NotReady(f"metastore Thrift call failed: {exc}") from exc


SERVICE = Service(
    name="metastore",
    summary="Hive Metastore, Thrift",
    endpoint=lambda s: s.metastore_uri,
    ports=lambda s: [urlparse(s.metastore_uri).port],
    install=_install,
    prepare=_prepare,
    command=_command,
    check=_check,
    depends_on=("postgres", "s3"),
)
