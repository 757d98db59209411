"""The metastore client of the stack (the Glue Data Catalog stand-in): Thrift calls to the Hive
Metastore, written with the thrift library's binary protocol (no generated bindings needed)."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from urllib.parse import urlparse

from thrift.protocol import TBinaryProtocol
from thrift.Thrift import TMessageType, TType
from thrift.transport import TSocket, TTransport

from lakelab.settings import Settings

# TSocket logs every refused connection while the metastore starts; readiness reports it instead.
logging.getLogger("thrift.transport.TSocket").setLevel(logging.CRITICAL)


@contextmanager
def _thrift(settings: Settings, timeout_ms: int = 5000):
    uri = urlparse(settings.metastore_uri)
    socket = TSocket.TSocket(uri.hostname, uri.port)
    socket.setTimeout(timeout_ms)
    transport = TTransport.TBufferedTransport(socket)
    transport.open()
    try:
        yield TBinaryProtocol.TBinaryProtocol(transport)
    finally:
        transport.close()


class MetastoreCallError(RuntimeError):
    """The metastore answered a Thrift call with an application exception."""


def _call(settings: Settings, method: str, args: list[tuple[int, int, str | bool]],
          timeout_ms: int = 5000) -> dict[int, list[str] | bool]:
    """One ThriftHiveMetastore call. `args` are its (field id, type, value) arguments (strings and
    booleans); returns the result's fields by id: lists of strings as read, any other field (a
    declared exception) as True."""
    writers = {TType.STRING: "writeString", TType.BOOL: "writeBool"}
    with _thrift(settings, timeout_ms) as protocol:
        protocol.writeMessageBegin(method, TMessageType.CALL, 1)
        protocol.writeStructBegin(f"{method}_args")
        for field_id, field_type, value in args:
            protocol.writeFieldBegin("arg", field_type, field_id)
            getattr(protocol, writers[field_type])(value)
            protocol.writeFieldEnd()
        protocol.writeFieldStop()
        protocol.writeStructEnd()
        protocol.writeMessageEnd()
        protocol.trans.flush()
        _, message_type, _ = protocol.readMessageBegin()
        if message_type == TMessageType.EXCEPTION:
            raise MetastoreCallError(f"metastore answered {method} with an exception")
        fields: dict[int, list[str] | bool] = {}
        protocol.readStructBegin()
        while True:
            _, field_type, field_id = protocol.readFieldBegin()
            if field_type == TType.STOP:
                break
            if field_type == TType.LIST:
                _, size = protocol.readListBegin()
                fields[field_id] = [protocol.readString() for _ in range(size)]
                protocol.readListEnd()
            else:
                protocol.skip(field_type)
                fields[field_id] = True
            protocol.readFieldEnd()
        return fields


class MetastoreClient:
    """The Thrift calls the project makes itself (Spark, Trino and Hudi bring their own clients)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def list_databases(self) -> list[str]:
        """`get_all_databases`: the smallest real metastore call."""
        result = _call(self.settings, "get_all_databases", [])
        if 0 not in result:
            raise MetastoreCallError("metastore could not list databases (MetaException)")
        return result[0]

    def drop_table(self, database: str, table: str) -> bool:
        """`drop_table`, metadata only (the files stay). False if there was no such table. Trino
        cannot drop a Hudi table registered by hive sync; this can."""
        result = _call(self.settings, "drop_table",
                       [(1, TType.STRING, database), (2, TType.STRING, table), (3, TType.BOOL, False)], 30_000)
        if 2 in result:  # MetaException
            raise MetastoreCallError(f"metastore could not drop {database}.{table}")
        return 1 not in result  # NoSuchObjectException


def get_client(settings: Settings) -> MetastoreClient:
    return MetastoreClient(settings)


