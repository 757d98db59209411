"""The Athena stand-in's SQL: Athena / Hive statements run on Trino (`lakelab sql FILE|-`).

Athena's DML is Trino's dialect already; its DDL is Hive's. Translated (parsed with sqlglot):

- `CREATE EXTERNAL TABLE [IF NOT EXISTS] t (cols) PARTITIONED BY (pcols) ROW FORMAT SERDE ... /
  STORED AS fmt | STORED AS INPUTFORMAT ... OUTPUTFORMAT ... LOCATION 's3://...'
  [TBLPROPERTIES (...)]` -> `CREATE TABLE [IF NOT EXISTS] t (cols, pcols) WITH (external_location,
  format, partitioned_by [, skip_header_line_count, textfile_field_separator, extra_properties])`:
  partition columns go last, Hive types become Trino types (string -> varchar, int -> integer),
  the format comes from STORED AS, the SerDe or the input format, other TBLPROPERTIES are kept
  as the table's parameters (`extra_properties`), COMMENT stays the table's comment.
- Athena's CTAS properties `CREATE TABLE t WITH (format, external_location, partitioned_by,
  bucketed_by, bucket_count, field_delimiter, write_compression) AS SELECT ...`: field_delimiter
  -> textfile_field_separator; the compression properties are dropped (Trino's default codec).
- `MSCK REPAIR TABLE t` -> `CALL system.sync_partition_metadata(schema, 't', 'ADD')`.
- `SHOW PARTITIONS t` -> `SELECT * FROM "t$partitions"`.
- Backquoted identifiers -> double-quoted (other statements pass through unchanged).

A file may hold several statements separated by `;`, each optionally named by a `-- name: NAME`
comment line before it, and `${var}` placeholders filled from `--var name=value`, defaulting
to the file's `-- var: name=value` lines; `-- database: NAME` sets its default schema. Sessions use
the UTC time zone, as Athena does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from string import Template

import sqlglot
import sqlglot.tokens
from sqlglot import exp

from lakelab.settings import Settings
from services.trino.client import get_client

SERDE_FORMATS = {
    "parquet": "PARQUET", "orc": "ORC", "avro": "AVRO", "openx.data.jsonserde": "OPENX_JSON",
    "hcatalog.data.jsonserde": "JSON", "jsonserde": "JSON", "opencsvserde": "CSV", "lazysimpleserde": "TEXTFILE",
    "regexserde": "REGEX", "sequencefile": "SEQUENCEFILE", "rcfile": "RCBINARY", "textinputformat": "TEXTFILE",
}
# sqlglot underlines the spot of a parse error with them: an AWS error message is plain text
TERMINAL_ESCAPES = re.compile(r"\x1b\[[0-9;]*m")
TBLPROPERTIES = {"skip.header.line.count": "skip_header_line_count", "serialization.null.format": "null_format"}


class TranslationError(ValueError):
    """A statement could not be translated; the message quotes it."""


@dataclass
class Statement:
    sql: str
    name: str = ""
    translated: str = ""
    notes: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list] = field(default_factory=list)


def split(text: str, variables: dict[str, str] | None = None) -> list[Statement]:
    """Statements of a SQL text, `${var}` filled, each with the `-- name:` given before it."""
    defaults = dict(re.findall(r"^\s*--\s*var:\s*(\w+)=(\S*)", text, flags=re.MULTILINE))
    filled = Template(text).safe_substitute({**defaults, **(variables or {})})
    if unfilled := sorted(set(re.findall(r"\$\{(\w+)\}", filled))):
        raise TranslationError(f"no value for ${{{'}, ${'.join(unfilled)}}} (pass --var NAME=VALUE)")
    cuts, start = [], 0
    for token in sqlglot.tokens.Tokenizer().tokenize(filled):
        if token.token_type == sqlglot.tokens.TokenType.SEMICOLON:
            cuts.append(filled[start:token.start])
            start = token.end + 1
    cuts.append(filled[start:])
    statements = []
    for chunk in cuts:
        names = re.findall(r"^\s*--\s*name:\s*(\S+)", chunk, flags=re.MULTILINE)
        body = "\n".join(line for line in chunk.splitlines() if not line.strip().startswith("--")).strip()
        if body:
            statements.append(Statement(body, names[-1] if names else ""))
    return statements


def translate(statement: Statement, schema: str) -> Statement:
    """`statement` with its Trino text set; TranslationError naming the cause when sqlglot cannot
    read it (a bad token, Hive DDL it cannot parse, nesting deeper than its parser recurses)."""
    try:
        return _translate(statement, schema)
    except sqlglot.errors.SqlglotError as exc:
        raise TranslationError(f"cannot parse as Athena SQL: {str(exc).splitlines()[0]}") from exc
    except RecursionError as exc:
        raise TranslationError("the statement is nested too deeply to translate; flatten it, "
                               "e.g. with WITH") from exc


def _translate(statement: Statement, schema: str) -> Statement:
    sql = statement.sql
    if match := re.fullmatch(r"MSCK\s+REPAIR\s+TABLE\s+([`\"\w.]+)", sql, flags=re.IGNORECASE):
        table_schema, table = _split_name(match.group(1), schema)
        statement.translated = f"CALL system.sync_partition_metadata('{table_schema}', '{table}', 'ADD')"
    elif match := re.fullmatch(r"SHOW\s+PARTITIONS\s+([`\"\w.]+)", sql, flags=re.IGNORECASE):
        table_schema, table = _split_name(match.group(1), schema)
        statement.translated = f'SELECT * FROM "{table_schema}"."{table}$partitions"'
    elif re.match(r"CREATE\s+EXTERNAL\s+TABLE", sql, flags=re.IGNORECASE):
        statement.translated = _create_external(sql, statement.notes)
    elif match := re.match(r"CREATE\s+TABLE\s+[^(]*?\bWITH\s*\(", sql, flags=re.IGNORECASE):
        statement.translated = _ctas_properties(sql, match.end(), statement.notes)
    elif "`" in sql:
        statement.translated = sqlglot.transpile(sql, read="hive", write="trino")[0]
    else:
        statement.translated = sql
    return statement


def _split_name(name: str, schema: str) -> tuple[str, str]:
    parts = [p.strip('`"') for p in name.split(".")]
    return (parts[-2] if len(parts) > 1 else schema), parts[-1]


def _create_external(sql: str, notes: list[str]) -> str:
    try:
        tree = sqlglot.parse_one(sql, read="hive")
    except sqlglot.errors.ParseError as exc:
        raise TranslationError(f"cannot parse as Hive DDL: {TERMINAL_ESCAPES.sub('', str(exc))}") from exc
    assert isinstance(tree, exp.Create)
    schema_node = tree.this
    columns = [c.sql("trino") for c in schema_node.expressions]
    partition_columns, location, fmt, properties, parameters, comment = [], None, None, [], {}, ""
    for prop in tree.args["properties"].expressions:
        if isinstance(prop, exp.ExternalProperty):
            continue
        if isinstance(prop, exp.PartitionedByProperty):
            partition_columns = [c for c in prop.this.expressions]
        elif isinstance(prop, exp.LocationProperty):
            location = prop.this.name
        elif isinstance(prop, exp.FileFormatProperty):
            value = prop.this
            text = (value.args.get("input_format") or value).sql() if isinstance(value, exp.InputOutputFormat) else value.name
            fmt = fmt or _format(text, notes)
        elif isinstance(prop, exp.RowFormatSerdeProperty):
            fmt = _format(prop.this.name, notes)  # the SerDe decides over the input format
        elif isinstance(prop, exp.RowFormatDelimitedProperty):
            fmt = "TEXTFILE"
            if separator := prop.args.get("fields"):
                properties.append(f"textfile_field_separator = '{separator.name}'")
        elif isinstance(prop, exp.SchemaCommentProperty):
            comment = prop.this.name
        elif isinstance(prop, exp.Property):
            key = prop.name
            value = prop.args["value"].name
            if key in TBLPROPERTIES:
                properties.append(f"{TBLPROPERTIES[key]} = " + (value if value.isdigit() else f"'{value}'"))
            else:
                parameters[key] = value
        else:
            notes.append(f"{prop.sql('hive')} ignored")
    if not location:
        raise TranslationError("CREATE EXTERNAL TABLE needs a LOCATION")
    if not fmt:
        fmt = "TEXTFILE"
        notes.append("no STORED AS / SERDE: Hive's default TEXTFILE")
    names = [c.this.name for c in partition_columns]
    with_ = [f"external_location = '{location}'", f"format = '{fmt}'"]
    if names:
        with_.append("partitioned_by = ARRAY[" + ", ".join(f"'{n}'" for n in names) + "]")
    with_ += properties
    if parameters:
        with_.append(f"extra_properties = MAP(ARRAY[{', '.join(map(_literal, parameters))}], "
                     f"ARRAY[{', '.join(map(_literal, parameters.values()))}])")
    table = tree.this.this.sql("trino")
    exists = " IF NOT EXISTS" if tree.args.get("exists") else ""
    all_columns = columns + [c.sql("trino") for c in partition_columns]
    described = f"\nCOMMENT {_literal(comment)}" if comment else ""
    return (f"CREATE TABLE{exists} {table} (\n  " + ",\n  ".join(all_columns) + f"\n){described} WITH (\n  "
            + ",\n  ".join(with_) + "\n)")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


CTAS_RENAMED = {"field_delimiter": "textfile_field_separator"}
CTAS_DROPPED = {"write_compression", "parquet_compression", "orc_compression", "compression_level", "is_external"}


def _ctas_properties(sql: str, start: int, notes: list[str]) -> str:
    """Athena's CTAS table properties in Trino's names: `sql[start:]` follows `WITH (`."""
    depth, index, cuts = 1, start, [start]
    in_string = False
    while depth and index < len(sql):
        char = sql[index]
        if char == "'":
            in_string = not in_string
        elif in_string:
            pass
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 1:
            cuts.append(index + 1)
        index += 1
    kept = []
    for begin, end in zip(cuts, [*cuts[1:], index]):
        item = sql[begin:end - 1].strip()
        name = item.split("=", 1)[0].strip().lower()
        if name in CTAS_DROPPED:
            notes.append(f"{item}: not applied (Trino writes with its default codec)")
        elif item:
            kept.append(f"{CTAS_RENAMED[name]} ={item.split('=', 1)[1]}" if name in CTAS_RENAMED else item)
    return f"{sql[:start]}{', '.join(kept)}{sql[index - 1:]}"


def _format(name: str, notes: list[str]) -> str:
    key = name.strip("'\"").lower()
    for fragment, fmt in SERDE_FORMATS.items():
        if fragment in key:
            return fmt
    raise TranslationError(f"unknown storage format or SerDe {name!r}")


def run(settings: Settings, text: str, schema: str | None = None, variables: dict[str, str] | None = None,
        only: list[str] | None = None, execute: bool = True) -> list[Statement]:
    """Split, translate and (unless `execute` is false) run the statements of `text` in order, in
    `schema`, else the file's `-- database: NAME` line, else `default` (Athena's query context);
    `only` keeps the statements of those names. Stops at the first failing statement."""
    declared = re.search(r"^\s*--\s*database:\s*(\w+)", text, flags=re.MULTILINE)
    schema = schema or (declared.group(1) if declared else "default")
    statements = [translate(s, schema) for s in split(text, variables) if not only or s.name in only]
    if only and (missing := set(only) - {s.name for s in statements}):
        raise TranslationError(f"no statement named {', '.join(sorted(missing))}")
    if not execute:
        return statements
    cursor = get_client(settings, "hive", schema, request_timeout=120, timezone="UTC").cursor()
    for statement in statements:
        cursor.execute(statement.translated)
        statement.rows = cursor.fetchall()
        statement.columns = [d[0] for d in cursor.description or []]
    return statements
