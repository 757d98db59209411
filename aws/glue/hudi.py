"""The Glue Hudi connector stand-in: the write options every Spark job's Hudi table shares.

Copy-on-write upserts, table version 6 with no metadata table (what Hudi 0.15 writes and Trino
476 reads), `DefaultHoodieRecordPayload` ordered by `ordering_field` against the stored row too
(an older event never replaces a newer one), sized for 2 cores, and hive sync (HMS mode) into the
stack's metastore so Trino's catalogs see the table and its new columns.
"""

from __future__ import annotations

from lakelab.settings import Settings

PARALLELISM = "2"


def write_options(settings: Settings, *, table: str, database: str, record_key: str, ordering_field: str,
                  partition_field: str | None = None, index: str = "SIMPLE", hive_sync: bool = True) -> dict[str, str]:
    """Options of one upsert into `database.table`, partitioned (hive style) by `partition_field`
    or not at all. Jobs add their own tuning on top."""
    if partition_field:
        layout = {
            "hoodie.datasource.write.partitionpath.field": partition_field,
            "hoodie.datasource.write.keygenerator.class": "org.apache.hudi.keygen.SimpleKeyGenerator",
            "hoodie.datasource.write.hive_style_partitioning": "true",
            "hoodie.datasource.hive_sync.partition_fields": partition_field,
            "hoodie.datasource.hive_sync.partition_extractor_class": "org.apache.hudi.hive.MultiPartKeysValueExtractor",
        }
    else:
        layout = {
            "hoodie.datasource.write.partitionpath.field": "",
            "hoodie.datasource.write.keygenerator.class": "org.apache.hudi.keygen.NonpartitionedKeyGenerator",
            "hoodie.datasource.hive_sync.partition_extractor_class": "org.apache.hudi.hive.NonPartitionedExtractor",
        }
    return {
        "hoodie.table.name": table,
        "hoodie.datasource.write.table.type": "COPY_ON_WRITE",
        "hoodie.datasource.write.operation": "upsert",
        "hoodie.datasource.write.recordkey.field": record_key,
        "hoodie.datasource.write.precombine.field": ordering_field,
        "hoodie.datasource.write.payload.class": "org.apache.hudi.common.model.DefaultHoodieRecordPayload",
        "hoodie.payload.ordering.field": ordering_field,
        "hoodie.write.table.version": "6",
        "hoodie.metadata.enable": "false",  # 2 cores: no metadata table
        "hoodie.index.type": index,
        "hoodie.parquet.compression.codec": "snappy",
        # Each write is a write client of its own: an embedded timeline server would start and stop
        # with every commit (reused across tables, lab D's three commits still took 0.35 s longer).
        "hoodie.embed.timeline.server": "false",
        "hoodie.write.markers.type": "DIRECT",
        **{f"hoodie.{name}.parallelism": PARALLELISM for name in (
            "upsert.shuffle", "insert.shuffle", "bulkinsert.shuffle", "global.simple.index", "simple.index",
            "global.index.reconcile", "finalize.write", "markers.delete", "file.listing", "cleaner")},
        **layout,
        "hoodie.datasource.hive_sync.enable": str(hive_sync).lower(),
        "hoodie.datasource.meta.sync.enable": str(hive_sync).lower(),
        "hoodie.datasource.hive_sync.mode": "hms",
        "hoodie.datasource.hive_sync.metastore.uris": settings.metastore_uri,
        "hoodie.datasource.hive_sync.database": database,
        "hoodie.datasource.hive_sync.table": table,
        "hoodie.datasource.hive_sync.support_timestamp": "true",
        "hoodie.datasource.hive_sync.auto_create_database": "true",
    }
