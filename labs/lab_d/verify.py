"""Lab D's check: a PostgreSQL table against its CDC copy in the lake, row for row, through Trino.

    lakelab lab-d verify [--schema public] [--tables customers,products,orders] [--table-suffix ""]

Every source column is compared (the lake's extra `_cdc_*` and `_hoodie_*` columns are not):
json/jsonb as PostgreSQL's text, timestamptz as UTC, numerics as exact decimals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from psycopg import sql

from lakelab.resources import resources
from lakelab.settings import Settings
from services.postgres import client as postgres
from services.trino import client as trino

LAB = resources().labs.lab_d


@dataclass
class Difference:
    table: str
    source_rows: int
    lake_rows: int
    missing: list = field(default_factory=list)      # keys in the source, not in the lake
    extra: list = field(default_factory=list)        # keys in the lake, not in the source
    different: list = field(default_factory=list)    # (key, source row, lake row)
    error: str | None = None

    @property
    def equal(self) -> bool:
        return self.error is None and not (self.missing or self.extra or self.different)

    def __str__(self) -> str:
        if self.error:
            return f"{self.table}: {self.error}"
        if self.equal:
            return f"{self.table}: equal ({self.source_rows} rows)"
        sample = self.different[:2]
        return (f"{self.table}: source {self.source_rows} rows, lake {self.lake_rows}; missing {len(self.missing)} "
                f"{self.missing[:5]}, extra {len(self.extra)} {self.extra[:5]}, different {len(self.different)} {sample}")


def source_columns(settings: Settings, schema: str, table: str, database: str = LAB.source_database) -> tuple[list[str], list[str]]:
    """(columns in order, primary key columns) of a source table."""
    with postgres.get_client(settings, database) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position", (schema, table)).fetchall()
        keys = [r[0] for r in conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY a.attnum",
            (sql.Identifier(schema, table).as_string(conn),))]
    return [c[0] for c in columns], keys


def source_rows(settings: Settings, schema: str, table: str, database: str = LAB.source_database) -> tuple[list[str], list[str], list[tuple]]:
    with postgres.get_client(settings, database) as conn:
        types = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position", (schema, table)).fetchall()
        selects = []
        for name, data_type in types:
            column = sql.Identifier(name)
            if data_type in ("json", "jsonb"):
                selects.append(sql.SQL("{}::text").format(column))
            elif data_type == "timestamp with time zone":
                selects.append(sql.SQL("{} AT TIME ZONE 'UTC'").format(column))
            else:
                selects.append(column)
        rows = conn.execute(sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(selects),
                                                                sql.Identifier(schema, table))).fetchall()
    columns, keys = source_columns(settings, schema, table, database)
    return columns, keys, rows


def lake_rows(settings: Settings, table: str, columns: list[str], catalog: str = "hudi",
              database: str = LAB.database) -> list[tuple]:
    cursor = trino.get_client(settings, catalog, database, request_timeout=120).cursor()
    cursor.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in columns)} FROM {catalog}.{database}."{table}"')
    return [tuple(r) for r in cursor.fetchall()]


def compare(settings: Settings, schema: str, table: str, lake_table: str, catalog: str = "hudi",
            database: str = LAB.database) -> Difference:
    columns, keys, source = source_rows(settings, schema, table)
    try:
        lake = lake_rows(settings, lake_table, columns, catalog, database)
    except Exception as exc:  # noqa: BLE001 - a missing table or column is a difference, reported as such
        return Difference(table, len(source), 0, error=str(exc).splitlines()[0][:300])
    positions = [columns.index(k) for k in keys]
    src, dst = ({tuple(r[i] for i in positions): tuple(r) for r in rows} for rows in (source, lake))
    diff = Difference(table, len(source), len(lake))
    diff.missing = sorted(k for k in src.keys() - dst.keys())
    diff.extra = sorted(k for k in dst.keys() - src.keys())
    diff.different = [(k, src[k], dst[k]) for k in sorted(src.keys() & dst.keys()) if src[k] != dst[k]]
    if len(lake) != len(dst):
        diff.error = f"{len(lake) - len(dst)} duplicate keys in the lake"
    return diff


def wait_equal(settings: Settings, schema: str, tables: list[str], suffix: str = "", catalog: str = "hudi",
               timeout_s: float = 180.0, interval_s: float = 3.0) -> list[Difference]:
    """Poll until every table equals its lake copy; returns the last comparison (equal or not)."""
    deadline = time.monotonic() + timeout_s
    while True:
        diffs = [compare(settings, schema, t, f"{t}{suffix}", catalog) for t in tables]
        if all(d.equal for d in diffs) or time.monotonic() > deadline:
            return diffs
        time.sleep(interval_s)
