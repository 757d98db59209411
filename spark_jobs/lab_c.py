"""Lab C's ETL (the Glue batch job stand-in): one validated sales CSV -> typed rows ->
`sum(Total_Sales)` by `location` -> a Parquet partition of a metastore table Trino reads.

The table is partitioned by `source`, a stable id of the raw object's key: processing a file
again overwrites its own partition (INSERT OVERWRITE ... PARTITION), so re-running a run or
re-uploading a key never doubles the totals; the table-wide total per location is
`SELECT location, sum(total_sales) FROM processed_sales GROUP BY location`.

    lakelab lab-c etl s3a://raw/sales/sales_data_london.csv   # one standalone batch run
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Annotated, Any

import typer
from pyspark.sql import functions as F

from lakelab.resources import resources
from lakelab.settings import get_settings
from services.spark.client import get_session

LAB = resources().labs.lab_c

SPARK_TYPES = {"int": "bigint", "double": "double", "string": "string", "date": "date", "bool": "boolean"}
TABLE_COLUMNS = """location STRING, total_sales DOUBLE, orders BIGINT, first_date DATE, last_date DATE,
                   source_key STRING, run_id STRING, processed_at TIMESTAMP"""
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def source_id(uri: str) -> str:
    """The partition value for one raw object: the same key always lands in the same partition."""
    return hashlib.sha1(uri.encode()).hexdigest()[:16]


def _identifier(name: str) -> str:
    if not all(NAME.match(part) for part in name.split(".")):
        raise ValueError(f"not a plain table name: {name!r}")
    return name


def ensure_table(spark, table: str, location: str) -> None:
    spark.sql(f"""CREATE TABLE IF NOT EXISTS {_identifier(table)} ({TABLE_COLUMNS})
                  PARTITIONED BY (source STRING) STORED AS PARQUET LOCATION '{location}'""")


def run(spark, source: str, table: str, location: str, schema: dict[str, str], run_id: str = "manual",
        group_by: str = "location", measure: str = "Total_Sales", date_column: str = "Date") -> dict[str, Any]:
    """Reads `source` (s3a:// CSV with a header), casts the `schema` columns, aggregates and
    overwrites the source's partition of `table`. Returns counts for the run history."""
    began = time.monotonic()
    raw = spark.read.option("header", True).option("mode", "PERMISSIVE").csv(source)
    typed = raw.select([
        (F.to_date(F.col(c), "yyyy-MM-dd") if t == "date" else F.col(c).cast(SPARK_TYPES[t])).alias(c)
        for c, t in schema.items()
    ]).cache()
    clean = typed.where(F.col(group_by).isNotNull() & F.col(measure).isNotNull())
    partition = source_id(source.replace("s3a://", "s3://"))
    aggregated = clean.groupBy(F.col(group_by).alias("location")).agg(
        F.round(F.sum(measure), 2).alias("total_sales"),
        F.count(F.lit(1)).alias("orders"),
        F.min(date_column).alias("first_date"),
        F.max(date_column).alias("last_date"),
    ).select("location", "total_sales", "orders", "first_date", "last_date",
             F.lit(source.replace("s3a://", "s3://")).alias("source_key"), F.lit(run_id).alias("run_id"),
             F.current_timestamp().alias("processed_at"))
    ensure_table(spark, table, location)
    view = f"sales_etl_{partition}"
    aggregated.coalesce(1).createOrReplaceTempView(view)
    spark.sql(f"INSERT OVERWRITE TABLE {_identifier(table)} PARTITION (source = '{partition}') SELECT * FROM {view}")
    rows_in, rows_kept = typed.count(), clean.count()
    typed.unpersist()
    spark.catalog.dropTempView(view)
    return {"table": table, "source_uri": source.replace("s3a://", "s3://"), "partition": f"source={partition}", "source_id": partition, "rows_in": rows_in,
            "rows_dropped": rows_in - rows_kept, "locations": aggregated.count(),
            "seconds": round(time.monotonic() - began, 2)}


def set_properties(spark, table: str, properties: dict[str, str]) -> None:
    """Governance metadata as table properties in the metastore (Spark SQL; Trino's hive
    connector cannot set arbitrary keys). Trino shows them in `"<table>$properties"`."""
    pairs = ", ".join(f"'{k}' = '{str(v).replace(chr(39), '')}'" for k, v in properties.items())
    spark.sql(f"ALTER TABLE {_identifier(table)} SET TBLPROPERTIES ({pairs})")


def row_count(spark, table: str) -> int:
    return spark.table(_identifier(table)).count()


DEFAULT_SCHEMA = {"Order_ID": "int", "Date": "date", "Product": "string", "Quantity": "int",
                  "Unit_Price": "double", "Total_Sales": "double", "location": "string"}


def etl(
    source: Annotated[str, typer.Argument(help="s3a://bucket/key of a sales CSV")],
    table: Annotated[str, typer.Option()] = LAB.qualified_table,
    location: Annotated[str, typer.Option()] = LAB.location,
) -> None:
    """Run the ETL once on one file, outside any workflow (no validation, no run history)."""
    spark = get_session(get_settings(), "lab_c-etl")
    try:
        print(run(spark, source, table, location, DEFAULT_SCHEMA))
    finally:
        spark.stop()


if __name__ == "__main__":
    typer.run(etl)
