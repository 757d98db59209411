"""The Glue crawler stand-in: infer a table from the files under an S3 prefix and register it, with
its partitions, in the metastore through Trino's hive catalog.

- Format: by extension (.json/.jsonl/.ndjson, .csv, .parquet), else by content; one per table.
- Columns: JSON lines -> names and types merged over every sampled record (bigint, double,
  boolean, varchar, row(...), array(...); mixed scalar types become varchar); Parquet -> the
  footers' schemas; CSV -> all varchar (Trino's CSV format reads varchar only), named by the
  caller's `csv_columns`, else by the header line, else `col0`, `col1`... as Glue names them.
  Whether a CSV file starts with a header is the caller's `csv_header`, else Glue's rule: the
  first line is a header when none of its fields is empty or a number, they are distinct, and a
  later line has a number where the first has text (so a file of text only has no header).
- Partitions: `key=value` folders between the prefix and the files, as varchar columns.
- Table: `CREATE TABLE ... WITH (external_location, format, partitioned_by)` when missing;
  `ALTER TABLE ... ADD COLUMN` for new columns; partitions by `system.sync_partition_metadata`.
  A second run over the same files changes nothing.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq
from trino.exceptions import TrinoUserError

from lakelab.settings import Settings
from services.s3.client import get_client, parse_uri
from services.trino.client import query, quote_identifier, quote_literal

EXTENSIONS = {"json": "JSON", "jsonl": "JSON", "ndjson": "JSON", "csv": "CSV", "parquet": "PARQUET"}


class CrawlError(ValueError):
    """The files cannot make one table; the message names the file (and line) at fault."""


@dataclass
class CrawlResult:
    table: str
    location: str
    format: str
    action: str  # created | updated | unchanged
    columns: list[tuple[str, str]]
    partition_keys: list[str]
    files: int
    added_columns: list[str] = field(default_factory=list)
    type_conflicts: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    partitions_before: int = 0
    partitions_after: int = 0


def column_name(name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", name.strip().lower()) or "_col"


# --- type inference ------------------------------------------------------------------------
def json_type(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double"
    if isinstance(value, dict):
        fields: dict[str, str | None] = {}
        for k, v in value.items():
            fields[column_name(k)] = merge_types(fields.get(column_name(k)), json_type(v))
        return "row(" + ", ".join(f"{quote_identifier(k)} {t or 'varchar'}" for k, t in fields.items()) + ")" if fields else "varchar"
    if isinstance(value, list):
        element = None
        for item in value:
            element = merge_types(element, json_type(item))
        return f"array({element or 'varchar'})"
    return "varchar"


def _row_fields(row_type: str) -> dict[str, str]:
    """The fields of a `row(...)` type as written by json_type."""
    fields, depth, token = {}, 0, ""
    for char in row_type[4:-1] + ",":
        if char == "," and depth == 0:
            name, _, kind = token.strip().partition(" ")
            fields[name.strip('"').replace('""', '"')] = kind
            token = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        token += char
    return fields


def merge_types(a: str | None, b: str | None) -> str | None:
    if a is None or a == b:
        return b if a is None else a
    if b is None:
        return a
    if {a, b} == {"bigint", "double"}:
        return "double"
    if a.startswith("row(") and b.startswith("row("):
        fa, fb = _row_fields(a), _row_fields(b)
        merged = {k: merge_types(fa.get(k), fb.get(k)) for k in {**fa, **fb}}
        return "row(" + ", ".join(f"{quote_identifier(k)} {t}" for k, t in merged.items()) + ")"
    if a.startswith("array(") and b.startswith("array("):
        return f"array({merge_types(a[6:-1], b[6:-1])})"
    return "varchar"


def arrow_type(t) -> str:
    simple = {pa.int8(): "tinyint", pa.int16(): "smallint", pa.int32(): "integer", pa.int64(): "bigint",
              pa.uint8(): "smallint", pa.uint16(): "integer", pa.uint32(): "bigint", pa.float32(): "real",
              pa.float64(): "double", pa.bool_(): "boolean", pa.string(): "varchar", pa.large_string(): "varchar",
              pa.binary(): "varbinary", pa.date32(): "date"}
    if t in simple:
        return simple[t]
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array({arrow_type(t.value_type)})"
    if pa.types.is_struct(t):
        return "row(" + ", ".join(f"{quote_identifier(column_name(f.name))} {arrow_type(f.type)}" for f in t) + ")"
    if pa.types.is_map(t):
        return f"map({arrow_type(t.key_type)}, {arrow_type(t.item_type)})"
    raise CrawlError(f"Parquet type {t} has no Hive equivalent here")


# --- reading the files ---------------------------------------------------------------------
def _objects(s3, bucket: str, prefix: str) -> Iterator[dict]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def _format_of(key: str, head: bytes) -> str:
    extension = key.rsplit("/", 1)[-1].rsplit(".", 1)[-1].lower() if "." in key.rsplit("/", 1)[-1] else ""
    if extension in EXTENSIONS:
        return EXTENSIONS[extension]
    if head.startswith(b"PAR1"):
        return "PARQUET"
    if head.lstrip()[:1] == b"{":
        return "JSON"
    return "CSV"


def _json_columns(uri: str, body: bytes, columns: dict[str, str | None], max_records: int) -> None:
    for number, raw in enumerate(body.splitlines()[:max_records], start=1):
        if not raw.strip():
            raise CrawlError(f"{uri} line {number}: blank line (Trino's JSON reader rejects it)")
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CrawlError(f"{uri} line {number}: not JSON ({exc})") from exc
        if not isinstance(record, dict):
            raise CrawlError(f"{uri} line {number}: a JSON {type(record).__name__}, not an object")
        for name, value in record.items():
            columns[column_name(name)] = merge_types(columns.get(column_name(name)), json_type(value))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def looks_like_header(rows: list[list[str]]) -> bool:
    """Glue's CSV classifier rule: the first row is a header when its fields are distinct,
    non-empty and not numbers, and some later row has a number where the first row has text."""
    first, data = rows[0], rows[1:]
    if len(set(first)) != len(first) or any(not field.strip() or _is_number(field) for field in first):
        return False
    return any(_is_number(row[i]) for row in data for i in range(min(len(row), len(first))))


@dataclass(frozen=True)
class CsvLayout:
    """How one CSV file reads: whether its first line is a header, and its columns' names."""

    header: bool
    columns: tuple[str, ...]


def csv_layout(uri: str, body: bytes, header: bool | None, names: Sequence[str], max_records: int) -> CsvLayout:
    lines = body.decode("utf-8", errors="replace").splitlines()[:max_records]
    rows = [row for row in csv.reader(lines) if row]
    if not rows:
        raise CrawlError(f"{uri}: no CSV lines")
    has_header = looks_like_header(rows) if header is None else header
    width = len(rows[0])
    if names:
        if len(names) != width:
            raise CrawlError(f"{uri}: {width} fields per line, but {len(names)} column names given ({', '.join(names)})")
        columns = [column_name(n) for n in names]
    elif has_header:
        columns = [column_name(field.strip()) for field in rows[0]]
    else:
        columns = [f"col{i}" for i in range(width)]
    return CsvLayout(has_header, tuple(columns))


def crawl(settings: Settings, location: str, database: str, table_prefix: str = "", table: str | None = None,
          sample_files: int = 1000, sample_bytes: int = 8 << 20, max_records: int = 10_000,
          csv_header: bool | None = None, csv_columns: Sequence[str] = ()) -> CrawlResult:
    """Infer the table under `location` (s3://bucket/prefix/) and create or update it in
    `database`, named `table`, else `table_prefix` + the folder's name (as Glue names it).
    CSV files: `csv_header` says whether they start with a header (None: detect it, as Glue
    does); `csv_columns` names their columns (default: the header's names, else col0, col1...)."""
    try:
        bucket, prefix = parse_uri(location)
    except ValueError as exc:
        raise CrawlError(f"{location}: expected s3://bucket/prefix/") from exc
    prefix = prefix.rstrip("/") + "/"
    name = table or table_prefix + column_name(prefix.rstrip("/").rsplit("/", 1)[-1])
    s3 = get_client(settings)

    files, skipped, layouts = [], [], {}
    for item in _objects(s3, bucket, prefix):
        relative = item["Key"][len(prefix):]
        segments = relative.split("/")
        if item["Key"].endswith("/") or any(s.startswith(("_", ".")) for s in segments):
            continue  # folder markers and hidden files, which Hive ignores too
        if item["Size"] == 0:
            skipped.append(f"s3://{bucket}/{item['Key']}: empty file")
            continue
        folders = segments[:-1]
        bad = [s for s in folders if "=" not in s]
        if bad:
            raise CrawlError(f"s3://{bucket}/{item['Key']}: folder {bad[0]!r} is not a key=value partition")
        keys = tuple(column_name(s.split("=", 1)[0]) for s in folders)
        layouts.setdefault(keys, item["Key"])
        files.append(item)
    if not files:
        raise CrawlError(f"no data files under s3://{bucket}/{prefix}" + (f" ({len(skipped)} empty)" if skipped else ""))
    if len(layouts) > 1:
        raise CrawlError("files at different partition layouts: " + "; ".join(
            f"{list(k) or 'no partitions'} (e.g. s3://{bucket}/{v})" for k, v in layouts.items()))
    partition_keys = list(next(iter(layouts)))

    columns: dict[str, str | None] = {}
    formats: dict[str, str] = {}
    csv_layouts: dict[CsvLayout, str] = {}
    for item in sorted(files, key=lambda i: i["Key"])[-sample_files:]:
        uri = f"s3://{bucket}/{item['Key']}"
        ranged = f"bytes=0-{sample_bytes - 1}"
        body = s3.get_object(Bucket=bucket, Key=item["Key"], **({} if item["Size"] <= sample_bytes else {"Range": ranged}))["Body"].read()
        kind = _format_of(item["Key"], body[:4])
        formats.setdefault(kind, uri)
        if kind == "PARQUET":
            if item["Size"] > sample_bytes:
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            try:
                schema = pq.read_schema(io.BytesIO(body))
            except Exception as exc:  # noqa: BLE001  (pyarrow raises several types for bad files)
                raise CrawlError(f"{uri}: not a readable Parquet file ({exc})") from exc
            for f in schema:
                columns[column_name(f.name)] = merge_types(columns.get(column_name(f.name)), arrow_type(f.type))
        elif kind == "JSON":
            if item["Size"] > sample_bytes:
                body = body[: body.rfind(b"\n") + 1]
            _json_columns(uri, body, columns, max_records)
        else:
            if item["Size"] > sample_bytes:
                body = body[: body.rfind(b"\n") + 1]
            layout = csv_layout(uri, body, csv_header, csv_columns, max_records)
            csv_layouts.setdefault(layout, uri)
            if len(csv_layouts) > 1:
                raise CrawlError("CSV files that differ: " + "; ".join(
                    f"{'header' if k.header else 'no header'}, columns {list(k.columns)} (e.g. {v})"
                    for k, v in csv_layouts.items()) + "; say whether they start with a header (crawl --header / --no-header)")
            for column in layout.columns:
                columns.setdefault(column, "varchar")
    if len(formats) > 1:
        raise CrawlError("mixed formats: " + "; ".join(f"{k} (e.g. {v})" for k, v in formats.items()))
    fmt = next(iter(formats))
    for key in partition_keys:
        columns.pop(key, None)  # a partition key wins over a same-named field
    inferred = [(c, t or "varchar") for c, t in columns.items()]
    if not inferred:
        raise CrawlError(f"no columns found in the files under s3://{bucket}/{prefix}")

    qualified = f"hive.{quote_identifier(database)}.{quote_identifier(name)}"
    result = CrawlResult(name, f"s3://{bucket}/{prefix.rstrip('/')}", fmt, "unchanged", inferred, partition_keys,
                         len(files), skipped=skipped)
    exists = query(settings, f"SELECT count(*) FROM hive.information_schema.tables "
                             f"WHERE table_schema = {quote_literal(database)} AND table_name = {quote_literal(name)}")[0][0]
    existing = {row[0]: (row[1], row[2]) for row in query(settings, f"SHOW COLUMNS FROM {qualified}")} if exists else {}
    if not existing:
        ddl_columns = [*(f"{quote_identifier(c)} {t}" for c, t in inferred), *(f"{quote_identifier(k)} varchar" for k in partition_keys)]
        properties = [f"external_location = {quote_literal(result.location)}", f"format = {quote_literal(fmt)}"]
        if partition_keys:
            properties.append("partitioned_by = ARRAY[" + ", ".join(map(quote_literal, partition_keys)) + "]")
        if fmt == "CSV" and next(iter(csv_layouts)).header:
            properties.append("skip_header_line_count = 1")
        properties.append(f"extra_properties = MAP(ARRAY['classification'], ARRAY['{fmt.lower()}'])")  # as Glue tags it
        query(settings, f"CREATE TABLE {qualified} ({', '.join(ddl_columns)}) WITH ({', '.join(properties)})")
        result.action = "created"
    else:
        show = query(settings, f"SHOW CREATE TABLE {qualified}")[0][0]
        table_keys = [c for c, (_, extra) in existing.items() if extra == "partition key"]
        found_location = re.search(r"external_location = '([^']*)'", show)
        found_format = re.search(r"format = '([^']*)'", show)
        if (found_location and parse_uri(found_location.group(1).rstrip("/")) != parse_uri(result.location)) \
                or (found_format and found_format.group(1) != fmt) or table_keys != partition_keys:
            raise CrawlError(f"table {database}.{name} exists with another location, format or partitioning "
                             f"({found_location.group(1) if found_location else '?'}, "
                             f"{found_format.group(1) if found_format else '?'}, {table_keys}); drop it or pass --table")
        for column, kind in inferred:
            if column not in existing:
                query(settings, f"ALTER TABLE {qualified} ADD COLUMN {quote_identifier(column)} {kind}")
                result.added_columns.append(column)
            elif existing[column][0].replace(" ", "") != kind.replace(" ", "").replace('"', ""):
                result.type_conflicts.append(f"{column}: table {existing[column][0]}, files {kind}")
        result.action = "updated" if result.added_columns else "unchanged"

    if partition_keys:
        count = f'SELECT count(*) FROM hive.{quote_identifier(database)}.{quote_identifier(name + "$partitions")}'
        result.partitions_before = 0 if result.action == "created" else query(settings, count)[0][0]
        try:
            query(settings, f"CALL hive.system.sync_partition_metadata({quote_literal(database)}, "
                            f"{quote_literal(name)}, 'FULL')")
        except TrinoUserError as exc:
            raise CrawlError(f"syncing partitions of {database}.{name}: {exc.message}") from exc
        result.partitions_after = query(settings, count)[0][0]
        if result.action == "unchanged" and result.partitions_after != result.partitions_before:
            result.action = "updated"
    return result
