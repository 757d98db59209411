"""The metastore client of the stack (the Glue Data Catalog stand-in): the Hive Metastore's own
Thrift interface, with the bindings PyPI `pymetastore` generated from Hive's IDL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from pymetastore.hive_metastore import ThriftHiveMetastore
from pymetastore.hive_metastore.ttypes import NoSuchObjectException, Table
from thrift.protocol import TBinaryProtocol
from thrift.transport import TSocket, TTransport

from lakelab.settings import Settings

# TSocket logs every refused connection while the metastore starts; readiness reports it instead.
logging.getLogger("thrift.transport.TSocket").setLevel(logging.CRITICAL)


class MetastoreClient:
    """The calls the project makes itself (Spark, Trino and Hudi bring their own clients)."""

    def __init__(self, settings: Settings, timeout_ms: int = 30_000) -> None:
        self.settings, self.timeout_ms = settings, timeout_ms

    @contextmanager
    def _client(self) -> Iterator[ThriftHiveMetastore.Client]:
        socket = TSocket.TSocket(self.settings.host_of(self.settings.metastore_uri),
                                 self.settings.port_of(self.settings.metastore_uri))
        socket.setTimeout(self.timeout_ms)
        transport = TTransport.TBufferedTransport(socket)
        transport.open()
        try:
            yield ThriftHiveMetastore.Client(TBinaryProtocol.TBinaryProtocol(transport))
        finally:
            transport.close()

    def list_databases(self) -> list[str]:
        """`get_all_databases`: the smallest real metastore call."""
        with self._client() as client:
            return client.get_all_databases()

    def get_table(self, database: str, table: str) -> Table | None:
        """The table's metadata (columns, storage descriptor, partition keys, parameters), or None."""
        with self._client() as client:
            try:
                return client.get_table(database, table)
            except NoSuchObjectException:
                return None

    def drop_table(self, database: str, table: str) -> bool:
        """Metadata only (the files stay). False if there was no such table. Trino cannot drop a
        Hudi table registered by hive sync; this can."""
        with self._client() as client:
            try:
                client.drop_table(database, table, False)
            except NoSuchObjectException:
                return False
        return True


# The Trino format names of Hive's input formats and SerDes, most specific first.
FORMATS = (("parquet", "PARQUET"), ("orc", "ORC"), ("avro", "AVRO"), ("opencsvserde", "CSV"),
           ("openx.data.jsonserde", "OPENX_JSON"), ("jsonserde", "JSON"), ("regexserde", "REGEX"),
           ("sequencefile", "SEQUENCEFILE"), ("rcfile", "RCBINARY"), ("textinputformat", "TEXTFILE"))


def storage_format(table: Table) -> str | None:
    """A table's storage format as Trino names it (PARQUET, JSON, CSV, TEXTFILE...)."""
    described = f"{table.sd.serdeInfo.serializationLib if table.sd.serdeInfo else ''} {table.sd.inputFormat}".lower()
    return next((name for fragment, name in FORMATS if fragment in described), None)


def get_client(settings: Settings, timeout_ms: int = 30_000) -> MetastoreClient:
    return MetastoreClient(settings, timeout_ms)
