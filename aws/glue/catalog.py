"""The Glue Data Catalog read and written through Trino's hive catalog (the metastore behind it),
shaped as Glue's API shapes it. Shared by the Glue provider and Athena's metadata operations.

Reads: a table is `SHOW COLUMNS` (columns, Hive types, partition keys, comments), `SHOW CREATE
TABLE` (location, format, comment) and `"t$properties"` (parameters); partitions are
`"t$partitions"`. Writes: CreateTable becomes Hive DDL run through Athena's translation
(aws/athena/sql.py); partitions are registered by `system.sync_partition_metadata`; DeleteTable
drops the metadata only, as Glue does (the metastore client's drop_table).

What Trino does not carry is approximated, and docs/aws.md says so: parameter names come back in
lower case; a partition's location is its `key=value/` folder under the table's location (the only
layout registered here); a database keeps its location only (no description or parameters).
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from sqlglot import exp
from sqlglot.errors import ParseError
from trino.exceptions import TrinoUserError

from aws.athena.sql import Statement, translate
from aws.gateway.errors import AwsError
from lakelab.settings import Settings
from services.metastore.client import get_client as metastore
from services.s3.client import parse_uri
from services.trino.client import get_client as trino_connection
from services.trino.client import query

CATALOG = "hive"
HIDDEN_SCHEMAS = {"information_schema"}
TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
PARQUET = ("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
           "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
           "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
# Trino's storage formats as the metastore stores them: (input format, output format, SerDe)
STORAGE = {
    "PARQUET": PARQUET,
    "ORC": ("org.apache.hadoop.hive.ql.io.orc.OrcInputFormat", "org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat",
            "org.apache.hadoop.hive.ql.io.orc.OrcSerde"),
    "AVRO": ("org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat",
             "org.apache.hadoop.hive.ql.io.avro.AvroContainerOutputFormat", "org.apache.hadoop.hive.serde2.avro.AvroSerDe"),
    "JSON": (TEXT_INPUT, TEXT_OUTPUT, "org.apache.hive.hcatalog.data.JsonSerDe"),
    "OPENX_JSON": (TEXT_INPUT, TEXT_OUTPUT, "org.openx.data.jsonserde.JsonSerDe"),
    "CSV": (TEXT_INPUT, TEXT_OUTPUT, "org.apache.hadoop.hive.serde2.OpenCSVSerde"),
    "TEXTFILE": (TEXT_INPUT, TEXT_OUTPUT, "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"),
    "REGEX": (TEXT_INPUT, TEXT_OUTPUT, "org.apache.hadoop.hive.serde2.RegexSerDe"),
    "SEQUENCEFILE": ("org.apache.hadoop.mapred.SequenceFileInputFormat",
                     "org.apache.hadoop.hive.ql.io.HiveSequenceFileOutputFormat",
                     "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"),
    "RCBINARY": ("org.apache.hadoop.hive.ql.io.RCFileInputFormat", "org.apache.hadoop.hive.ql.io.RCFileOutputFormat",
                 "org.apache.hadoop.hive.serde2.columnar.LazyBinaryColumnarSerDe"),
    "RCTEXT": ("org.apache.hadoop.hive.ql.io.RCFileInputFormat", "org.apache.hadoop.hive.ql.io.RCFileOutputFormat",
               "org.apache.hadoop.hive.serde2.columnar.ColumnarSerDe"),
    # Hudi tables hive-synced into the metastore (Trino reads them through its hudi catalog)
    "HUDI": ("org.apache.hudi.hadoop.HoodieParquetInputFormat", *PARQUET[1:]),
}
PARALLEL_QUERIES = 4


def not_found(what: str) -> AwsError:
    return AwsError("EntityNotFoundException", f"{what} not found.")


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _trino_type(column: dict) -> str:
    """A Glue column's Hive type in Trino's words; InvalidInputException when it is not one."""
    try:
        return exp.DataType.build(column["Type"], dialect="hive").sql("trino")
    except (ParseError, ValueError, RecursionError) as exc:
        raise AwsError("InvalidInputException", f"Column {column['Name']}: {column['Type']!r} is not a Hive "
                                                "type.") from exc


def hive_type(trino_type: str) -> str:
    """Trino's type as Glue and Hive write it: `row(a varchar, b array(bigint))` -> `struct<a:string,b:array<bigint>>`."""
    written = exp.DataType.build(trino_type, dialect="trino").sql("hive").lower()
    return re.sub(r"\s*([:,<>])\s*", r"\1", written)


def _epoch(value: str | None) -> datetime | None:
    return datetime.fromtimestamp(int(value), timezone.utc) if value and value.isdigit() else None


# Trino's errors for what a request gave (a LocationUri, a Location, columns), as Glue answers them
REFUSED_INPUT = {"INVALID_SCHEMA_PROPERTY", "INVALID_TABLE_PROPERTY", "DUPLICATE_COLUMN_NAME", "TYPE_NOT_FOUND"}


def matching(names: list[str], expression: str | None) -> list[str]:
    """The names that Glue's GetTables (and Athena's ListTableMetadata) `Expression` keeps: a regular
    expression over the whole name, `*` for any characters; ValueError when it is not one."""
    if not expression:
        return names
    try:
        pattern = re.compile(expression.replace("*", ".*"))
    except re.error as exc:
        raise ValueError(f"Expression {expression!r} is not a regular expression: {exc}") from None
    return [name for name in names if pattern.fullmatch(name)]


class Catalog:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool = ThreadPoolExecutor(PARALLEL_QUERIES, thread_name_prefix="glue-catalog")

    def _query(self, sql: str) -> list[list]:
        try:
            return query(self.settings, sql, CATALOG)
        except TrinoUserError as exc:
            if exc.error_name in REFUSED_INPUT:
                raise AwsError("InvalidInputException", exc.message) from None
            raise

    # -- databases ---------------------------------------------------------------------------------

    def database_names(self) -> list[str]:
        return sorted(row[0] for row in self._query(f"SHOW SCHEMAS FROM {CATALOG}") if row[0] not in HIDDEN_SCHEMAS)

    def database(self, name: str) -> dict:
        try:
            created = self._query(f"SHOW CREATE SCHEMA {CATALOG}.{quoted(name)}")[0][0]
        except TrinoUserError as exc:
            if exc.error_name == "SCHEMA_NOT_FOUND":
                raise not_found(f"Database {name}") from None
            raise
        location = re.search(r"location = '((?:[^']|'')*)'", created)
        described = {"Name": name, "Parameters": {}, "CreateTableDefaultPermissions": []}
        if location:
            described["LocationUri"] = location.group(1).replace("''", "'")
        return described

    def databases(self) -> list[dict]:
        return list(self._pool.map(self.database, self.database_names()))

    def create_database(self, name: str, location: str | None) -> None:
        if name.lower() in self.database_names():
            raise AwsError("AlreadyExistsException", "Database already exists.")
        where = f" WITH (location = {literal(location)})" if location else ""
        self._query(f"CREATE SCHEMA {CATALOG}.{quoted(name)}{where}")

    def delete_database(self, name: str) -> None:
        """Glue's DeleteDatabase: the database and its tables' metadata (their files stay)."""
        for table in self.table_names(name):
            self.delete_table(name, table)
        self._query(f"DROP SCHEMA {CATALOG}.{quoted(name)}")

    # -- tables ------------------------------------------------------------------------------------

    def table_names(self, database: str) -> list[str]:
        self.database(database)  # EntityNotFoundException for a missing database
        rows = self._query(f"SELECT table_name FROM {CATALOG}.information_schema.tables "
                           f"WHERE table_schema = {literal(database)} ORDER BY table_name")
        return [row[0] for row in rows]

    def tables(self, database: str, names: list[str] | None = None) -> list[dict]:
        """The tables of `database` (or those of `names`); a table Trino cannot describe (say, of an
        unknown SerDe) is left out, as Glue's GetTables leaves out nothing but we cannot help it."""
        wanted = self.table_names(database) if names is None else names
        described = self._pool.map(lambda name: self._table_or_none(database, name), wanted)
        return [table for table in described if table is not None]

    def _table_or_none(self, database: str, name: str) -> dict | None:
        try:
            return self.table(database, name)
        except (AwsError, TrinoUserError):
            return None

    def table(self, database: str, name: str) -> dict:
        qualified = f"{CATALOG}.{quoted(database)}.{quoted(name)}"
        try:
            columns = self._query(f"SHOW COLUMNS FROM {qualified}")
            created = self._query(f"SHOW CREATE TABLE {qualified}")[0][0]
        except TrinoUserError as exc:
            if exc.error_name in ("TABLE_NOT_FOUND", "SCHEMA_NOT_FOUND"):
                raise not_found(f"Table {name}") from None
            raise
        try:
            cursor = trino_connection(self.settings, CATALOG).cursor()
            cursor.execute(f'SELECT * FROM {CATALOG}.{quoted(database)}.{quoted(name + "$properties")}')
            values = cursor.fetchall()
            names = [column[0] for column in cursor.description]
            parameters = {key: str(value) for key, value in zip(names, values[0]) if value is not None} if values else {}
        except TrinoUserError:  # Hudi tables (read through the hudi catalog) have no $properties
            parameters = {}
        settings = dict(re.findall(r"^\s+(\w+) = (.*?),?$", created, flags=re.MULTILINE))
        hudi = created.startswith("CREATE TABLE hudi.")
        fmt = "HUDI" if hudi else settings.get("format", "''").strip("'")
        location = (settings.get("external_location") or settings.get("location") or "").strip("'")
        external = "external_location" in settings or hudi
        if not location:
            schema_location = self.database(database).get("LocationUri", "")
            location = f"{schema_location.rstrip('/')}/{name}" if schema_location else ""
        input_format, output_format, serde = STORAGE.get(fmt, ("", "", ""))
        data_columns = [self._column(row) for row in columns if row[2] != "partition key"]
        partition_keys = [self._column(row) for row in columns if row[2] == "partition key"]
        comment = re.search(r"^COMMENT '((?:[^']|'')*)'$", created, flags=re.MULTILINE)
        table = {
            "Name": name, "DatabaseName": database, "Owner": "lakelab", "Retention": 0,
            "StorageDescriptor": {
                "Columns": data_columns, "Location": location, "InputFormat": input_format,
                "OutputFormat": output_format, "Compressed": False, "NumberOfBuckets": -1,
                "SerdeInfo": {"SerializationLibrary": serde, "Parameters": {"serialization.format": "1"}},
                "BucketColumns": [], "SortColumns": [], "Parameters": {}, "StoredAsSubDirectories": False,
            },
            "PartitionKeys": partition_keys,
            "TableType": "EXTERNAL_TABLE" if external else "MANAGED_TABLE",
            "Parameters": parameters,
            "IsRegisteredWithLakeFormation": False,
        }
        if created_at := _epoch(parameters.get("transient_lastddltime")):
            table["CreateTime"] = table["UpdateTime"] = created_at
        if comment:
            table["Description"] = comment.group(1).replace("''", "'")
        return table

    @staticmethod
    def _column(row: list) -> dict:
        name, kind, _, comment = row
        column = {"Name": name, "Type": hive_type(kind)}
        if comment:
            column["Comment"] = comment
        return column

    def create_table(self, database: str, table_input: dict) -> None:
        self.database(database)
        name = table_input["Name"].lower()
        if name in self.table_names(database):
            raise AwsError("AlreadyExistsException", "Table already exists.")
        self._query(self._create_sql(database, table_input))

    def _create_sql(self, database: str, table_input: dict) -> str:
        """TableInput as Athena's Hive DDL, run through the translation Athena queries use."""
        descriptor = table_input.get("StorageDescriptor", {})
        if not descriptor.get("Location"):
            raise AwsError("InvalidInputException", "lakelab registers tables with a StorageDescriptor.Location "
                                                    "(the table's files on S3).")
        if table_input.get("TableType") == "VIRTUAL_VIEW":
            raise AwsError("InvalidInputException", "Views are made with Athena's CREATE VIEW here, not CreateTable.")

        def columns(items: list[dict]) -> str:
            return ", ".join(f"`{c['Name']}` {c['Type']}" + (f" COMMENT {literal(c['Comment'])}" if c.get("Comment")
                                                             else "") for c in items)

        serde = descriptor.get("SerdeInfo", {}).get("SerializationLibrary")
        formats = [descriptor.get("InputFormat"), descriptor.get("OutputFormat")]
        parts = [f"CREATE EXTERNAL TABLE `{database}`.`{table_input['Name'].lower()}` "
                 f"({columns(descriptor.get('Columns', []))})"]
        if table_input.get("Description"):
            parts.append(f"COMMENT {literal(table_input['Description'])}")
        if table_input.get("PartitionKeys"):
            parts.append(f"PARTITIONED BY ({columns(table_input['PartitionKeys'])})")
        if serde:
            parts.append(f"ROW FORMAT SERDE {literal(serde)}")
        if all(formats):
            parts.append(f"STORED AS INPUTFORMAT {literal(formats[0])} OUTPUTFORMAT {literal(formats[1])}")
        elif not serde:
            raise AwsError("InvalidInputException", "StorageDescriptor needs a SerdeInfo.SerializationLibrary or "
                                                    "an InputFormat and OutputFormat.")
        parts.append(f"LOCATION {literal(descriptor['Location'])}")
        parameters = {k: v for k, v in table_input.get("Parameters", {}).items() if k.upper() != "EXTERNAL"}
        if parameters:
            parts.append("TBLPROPERTIES (" + ", ".join(f"{literal(k)}={literal(v)}" for k, v in parameters.items())
                         + ")")
        try:
            return translate(Statement("\n".join(parts)), database).translated
        except ValueError as exc:
            raise AwsError("InvalidInputException", str(exc)) from exc

    def update_table(self, database: str, table_input: dict) -> None:
        """Glue's UpdateTable replaces the definition. Added columns are ALTERed in; any other change
        re-registers the table (its metadata dropped and made again, partitions found again): the
        files stay, as for every external table."""
        current = self.table(database, table_input["Name"].lower())
        name = current["Name"]
        wanted_columns = table_input.get("StorageDescriptor", {}).get("Columns", [])
        old_columns = [(c["Name"], c["Type"]) for c in current["StorageDescriptor"]["Columns"]]
        new_columns = [(c["Name"].lower(), re.sub(r"\s+", "", c["Type"].lower())) for c in wanted_columns]
        same_elsewhere = (
            new_columns[:len(old_columns)] == old_columns
            and self._same_place(table_input.get("StorageDescriptor", {}).get("Location", ""),
                                 current["StorageDescriptor"]["Location"])
            and [k["Name"] for k in table_input.get("PartitionKeys", [])] == [k["Name"] for k in current["PartitionKeys"]]
            and {k.lower(): v for k, v in table_input.get("Parameters", {}).items() if k.upper() != "EXTERNAL"}.items()
            <= current["Parameters"].items())
        qualified = f"{CATALOG}.{quoted(database)}.{quoted(name)}"
        if same_elsewhere:
            added = [(column["Name"], _trino_type(column)) for column in wanted_columns[len(old_columns):]]
            for column_name, kind in added:  # every type read before the first column is added
                self._query(f"ALTER TABLE {qualified} ADD COLUMN {quoted(column_name)} {kind}")
            return
        if current["TableType"] != "EXTERNAL_TABLE":
            raise AwsError("InvalidInputException", f"{database}.{name} is a managed table: only new columns can be "
                                                    "added to it here.")
        create = self._create_sql(database, {**table_input, "Name": name})
        metastore(self.settings).drop_table(database, name)
        self._query(create)
        if table_input.get("PartitionKeys"):
            self._query(f"CALL {CATALOG}.system.sync_partition_metadata({literal(database)}, {literal(name)}, 'FULL')")

    def delete_table(self, database: str, name: str) -> None:
        self.database(database)
        if not metastore(self.settings).drop_table(database, name.lower()):
            raise not_found(f"Table {name}")

    # -- partitions --------------------------------------------------------------------------------

    def partitions(self, database: str, name: str, expression: str | None = None) -> list[dict]:
        table = self.table(database, name)
        keys = [k["Name"] for k in table["PartitionKeys"]]
        if not keys:
            return []
        where = f" WHERE {expression}" if expression else ""
        try:
            rows = self._query(f"SELECT {', '.join(map(quoted, keys))} FROM "
                               f"{CATALOG}.{quoted(database)}.{quoted(name + '$partitions')}{where} "
                               f"ORDER BY {', '.join(map(quoted, keys))}")
        except TrinoUserError as exc:
            raise AwsError("InvalidInputException", f"Expression {expression!r}: {exc.message}") from exc
        return [self._partition(table, [None if v is None else str(v) for v in row]) for row in rows]

    @staticmethod
    def _partition(table: dict, values: list[str]) -> dict:
        folders = "/".join(f"{key['Name']}={value}" for key, value in zip(table["PartitionKeys"], values))
        descriptor = {**table["StorageDescriptor"], "Location": f"{table['StorageDescriptor']['Location'].rstrip('/')}"
                                                                f"/{folders}"}
        return {"Values": values, "DatabaseName": table["DatabaseName"], "TableName": table["Name"],
                "StorageDescriptor": descriptor, "Parameters": {}}

    def create_partitions(self, database: str, name: str, inputs: list[dict]) -> list[dict]:
        """Register partitions; Glue's BatchCreatePartition Errors for those that could not be."""
        table = self.table(database, name)
        existing = {tuple(p["Values"]) for p in self.partitions(database, name)}
        errors, wanted = [], []
        for item in inputs:
            values = item["Values"]
            expected = self._partition(table, values)["StorageDescriptor"]["Location"]
            given = item.get("StorageDescriptor", {}).get("Location", expected)
            if tuple(values) in existing:
                errors.append(self._error(values, "AlreadyExistsException", "Partition already exists."))
            elif len(values) != len(table["PartitionKeys"]):
                errors.append(self._error(values, "InvalidInputException", "The number of partition values does not "
                                                                           "match the table's partition keys."))
            elif self._same_place(given, expected):
                wanted.append(tuple(values))
            else:
                errors.append(self._error(values, "InvalidInputException", f"Location {given}: lakelab registers a "
                                          f"partition at its key=value folder under the table, {expected}"))
        if wanted:
            self._query(f"CALL {CATALOG}.system.sync_partition_metadata({literal(database)}, {literal(name)}, 'ADD')")
            registered = {tuple(p["Values"]) for p in self.partitions(database, name)}
            errors += [self._error(list(values), "EntityNotFoundException", "No files in the partition's folder: "
                                   "lakelab registers partitions that have files (Trino's sync_partition_metadata).")
                       for values in wanted if values not in registered]
        return errors

    @staticmethod
    def _same_place(one: str, other: str) -> bool:
        try:
            return parse_uri(one.rstrip("/")) == parse_uri(other.rstrip("/"))
        except ValueError:
            return False

    @staticmethod
    def _error(values: list[str], code: str, message: str) -> dict:
        return {"PartitionValues": values, "ErrorDetail": {"ErrorCode": code, "ErrorMessage": message}}
