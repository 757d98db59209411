"""Athena's result shapes from Trino's answers: values as Athena prints them, ColumnInfo, and the
result files Athena leaves in the output location (`<id>.csv`: a header line, every value in
double quotes, NULL as nothing; `<id>.txt` for DDL and utility statements: tab-separated lines
without a header; `.metadata` beside either, here as JSON of the columns)."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from functools import lru_cache

from sqlglot import exp
from sqlglot.errors import ParseError

# Precision Athena reports for types that carry none
PRECISION = {"tinyint": 3, "smallint": 5, "integer": 10, "bigint": 19, "float": 7, "double": 17, "varchar": 2147483647,
             "varbinary": 1073741824, "json": 2147483647, "timestamp": 3}


@lru_cache(maxsize=512)
def parsed_type(trino_type: str) -> exp.DataType | None:
    try:
        return exp.DataType.build(trino_type, dialect="trino")
    except (ParseError, ValueError):
        return None


def java_double(value: float) -> str:
    """A double as Java (and so Athena) prints it: 10.0, 1416.99, 1.23456789E8, 1.0E-4."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        text = repr(float(value))
        return text if "e" not in text else format(Decimal(text), "f")
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    mantissa = "".join(map(str, digits))
    return f"{'-' if sign else ''}{mantissa[0]}.{mantissa[1:] or '0'}E{len(digits) - 1 + exponent}"


def athena_text(value: object, trino_type: str | exp.DataType | None) -> str | None:
    """One value as Athena's GetQueryResults and CSV show it; None for NULL."""
    if value is None:
        return None
    kind = parsed_type(trino_type) if isinstance(trino_type, str) else trino_type
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if kind is None:
        return str(value)
    inner = kind.expressions
    if kind.is_type(exp.DataType.Type.ARRAY) and isinstance(value, list):
        return "[" + ", ".join(_nested(v, inner[0] if inner else None) for v in value) + "]"
    if kind.is_type(exp.DataType.Type.MAP) and isinstance(value, dict):
        key_type, value_type = (inner + [None, None])[:2]
        return "{" + ", ".join(f"{_nested(k, key_type)}={_nested(v, value_type)}" for k, v in value.items()) + "}"
    if kind.is_type(exp.DataType.Type.STRUCT) and isinstance(value, (list, tuple)):
        fields = [(f.name, f.args.get("kind")) for f in inner]
        return "{" + ", ".join(f"{name}={_nested(v, field_type)}" for (name, field_type), v in zip(fields, value)) + "}"
    if kind.is_type(exp.DataType.Type.VARBINARY) and isinstance(value, str):
        return " ".join(f"{byte:02x}" for byte in base64.b64decode(value))
    return str(value)


def _nested(value: object, kind: exp.DataType | None) -> str:
    text = athena_text(value, kind)
    return "null" if text is None else text


def column_info(name: str, trino_type: str) -> dict:
    """Athena's ColumnInfo of a result column of Trino type `trino_type`."""
    base = trino_type.split("(", 1)[0].strip()
    base = {"real": "float", "unknown": "varchar"}.get(base, base)
    info = {"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": name, "Label": name, "Type": base,
            "Precision": PRECISION.get(base, 0), "Scale": 0, "Nullable": "UNKNOWN",
            "CaseSensitive": base in ("varchar", "char", "json")}
    arguments = trino_type[len(trino_type.split("(", 1)[0]):].strip("() ")
    if base in ("varchar", "char", "decimal", "timestamp") and arguments:
        numbers = [int(n) for n in arguments.split(",") if n.strip().isdigit()]
        if numbers:
            info["Precision"] = numbers[0]
        if base == "decimal" and len(numbers) == 2:
            info["Scale"] = numbers[1]
    return info


def csv_bytes(header: list[str], rows: list[list[str | None]]) -> bytes:
    def line(values: list[str | None]) -> str:
        return ",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in values)

    return "".join(line(values) + "\n" for values in [header, *rows]).encode()


def read_csv(body: bytes) -> list[list[str | None]]:
    """The rows (header first) of a result CSV written by csv_bytes, NULLs as None."""
    text, rows, row, index = body.decode(), [], [], 0
    field_start = True
    while index < len(text):
        char = text[index]
        if char == '"':
            end = index + 1
            value = []
            while True:
                quote = text.index('"', end)
                value.append(text[end:quote])
                if text.startswith('""', quote):
                    value.append('"')
                    end = quote + 2
                else:
                    index = quote + 1
                    break
            row.append("".join(value))
            field_start = False
            continue
        if char == ",":
            if field_start:
                row.append(None)
            field_start = True
        elif char == "\n":
            if field_start and row:
                row.append(None)
            rows.append(row)
            row, field_start = [], True
        index += 1
    width = len(rows[0]) if rows else 0
    return [row + [None] * (width - len(row)) for row in rows]  # a line of one NULL is empty


def text_bytes(rows: list[list[str | None]]) -> bytes:
    return "".join("\t".join("" if v is None else v for v in row) + "\n" for row in rows).encode()


def read_text(body: bytes) -> list[list[str | None]]:
    return [line.split("\t") for line in body.decode().splitlines()]


def metadata_bytes(columns: list[dict]) -> bytes:
    return json.dumps({"ColumnInfo": columns}).encode()
