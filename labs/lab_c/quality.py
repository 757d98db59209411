"""Data quality: per column missing values, distinct counts, min/max and outliers (robust z-score
or IQR), checked against configured thresholds; reported as JSON plus an HTML page with an
inline SVG chart, stored in the lake (`s3://processed/_quality/...`) and summarised on the CLI.
"""

from __future__ import annotations

import html
import io
import json
from datetime import date, datetime, timezone
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
from pydantic import BaseModel, Field, computed_field
from rich.table import Table

from lakelab.resources import resources
from lakelab.settings import Settings
from services.s3 import client as s3_client
from services.trino import client as trino

ARROW_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(), "double": pa.float64(), "string": pa.string(), "date": pa.date32(), "bool": pa.bool_(),
}
QUALITY_BUCKET = resources().labs.lab_c.processed_bucket
QUALITY_PREFIX = "_quality"


class QualityConfig(BaseModel):
    """Thresholds; the workflow file sets them in its QualityCheck state's Parameters."""

    outlier_method: Literal["robust_z", "iqr"] = "robust_z"
    outlier_threshold: float = 3.5  # |robust z| above this, or k in [Q1 - k IQR, Q3 + k IQR]
    max_missing_ratio: float = 0.2  # per column
    max_outlier_ratio: float = 0.05  # per numeric column
    min_rows: int = 1


class ColumnProfile(BaseModel):
    name: str
    type: str
    missing: int
    missing_ratio: float
    distinct: int  # -1 for list and map columns
    min: Any = None
    max: Any = None
    outliers: int | None = None
    outlier_ratio: float | None = None
    outlier_bounds: tuple[float, float] | None = None
    outlier_examples: list[float] = Field(default_factory=list)
    issues: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        return not self.issues


class QualityReport(BaseModel):
    dataset: str
    run_id: str | None = None
    created_at: datetime
    rows: int
    config: QualityConfig
    columns: list[ColumnProfile]
    issues: list[str]
    passed: bool

    def column(self, name: str) -> ColumnProfile:
        return next(c for c in self.columns if c.name == name)


# ---------------------------------------------------------------- reading


def read_csv(body: bytes, schema: dict[str, str] | None = None) -> pa.Table:
    """A CSV with a header; `schema` (column -> int|double|string|date|bool) types the columns
    it names; empty cells are missing values."""
    types = {name: ARROW_TYPES[t] for name, t in (schema or {}).items()}
    options = pacsv.ConvertOptions(column_types=types, null_values=[""], strings_can_be_null=True)
    return pacsv.read_csv(io.BytesIO(body), convert_options=options)


def read_any(body: bytes, key: str, schema: dict[str, str] | None = None) -> pa.Table:
    if key.endswith(".parquet"):
        return pq.read_table(io.BytesIO(body))
    if key.endswith((".json", ".jsonl", ".ndjson")):
        return pajson.read_json(io.BytesIO(body))
    return read_csv(body, schema)


# ---------------------------------------------------------------- profiling


def read_source(settings: Settings, source: str, schema: dict[str, str] | None = None,
                user: str | None = None) -> tuple[pa.Table, str]:
    """(rows, dataset name) of `s3://bucket/key` (CSV, JSON lines, Parquet; a CSV typed by
    `schema` when its header has those columns) or of a hive table `[schema.]table`."""
    if source.startswith(("s3://", "s3a://")):
        bucket, key = s3_client.parse_uri(source)
        body = s3_client.get_client(settings, user).get_object(Bucket=bucket, Key=key)["Body"].read()
        header = body.split(b"\n", 1)[0].decode(errors="replace")
        usable = schema if key.endswith(".csv") and schema and all(c in header for c in schema) else None
        return read_any(body, key, usable), f"{bucket}.{key.replace('/', '.')}"
    database, _, table = source.rpartition(".")
    cursor = trino.get_client(settings, "hive", database or "default").cursor()
    cursor.execute(f"SELECT * FROM {trino.quote_identifier(table)}")
    rows = cursor.fetchall()
    names = [d[0] for d in cursor.description]
    return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)}), source


def _plain(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _outliers(values: pa.Array, config: QualityConfig) -> tuple[int, tuple[float, float] | None, list[float]]:
    values = pc.cast(values.drop_null(), pa.float64())
    if len(values) < 3:
        return 0, None, []
    t = config.outlier_threshold
    if config.outlier_method == "iqr":
        q1, q3 = pc.quantile(values, q=[0.25, 0.75]).to_pylist()
        low, high = q1 - t * (q3 - q1), q3 + t * (q3 - q1)
    else:
        median = pc.quantile(values, q=0.5)[0].as_py()
        deviations = pc.abs(pc.subtract(values, median))
        scale = 1.4826 * pc.quantile(deviations, q=0.5)[0].as_py()
        if scale == 0:  # more than half the values equal: fall back on the mean absolute deviation
            scale = 1.253314 * pc.mean(deviations).as_py()
        if scale == 0:
            return 0, None, []
        low, high = median - t * scale, median + t * scale
    outside = pc.or_(pc.less(values, low), pc.greater(values, high))
    found = pc.filter(values, outside).to_pylist()
    return len(found), (low, high), sorted(found, key=lambda v: -abs(v))[:5]


def profile(table: pa.Table, dataset: str, config: QualityConfig | None = None, run_id: str | None = None) -> QualityReport:
    config = config or QualityConfig()
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()  # nested JSON objects: one column per field, `device.os`
    rows = table.num_rows
    columns = []
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        missing = column.null_count
        if pa.types.is_string(column.type):
            missing += pc.sum(pc.equal(pc.utf8_trim_whitespace(column), "")).as_py() or 0
        valid = column.drop_null()
        nested = pa.types.is_nested(column.type)
        ordered = len(valid) and not nested and not pa.types.is_boolean(column.type)
        min_max = pc.min_max(valid) if ordered else None
        profile_ = ColumnProfile(
            name=name, type=str(column.type), missing=missing, missing_ratio=missing / rows if rows else 0.0,
            distinct=-1 if nested else pc.count_distinct(valid).as_py(),
            min=_plain(min_max["min"].as_py()) if min_max else None,
            max=_plain(min_max["max"].as_py()) if min_max else None,
        )
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            count, bounds, examples = _outliers(column, config)
            profile_.outliers, profile_.outlier_bounds, profile_.outlier_examples = count, bounds, examples
            profile_.outlier_ratio = count / len(valid) if len(valid) else 0.0
            if profile_.outlier_ratio > config.max_outlier_ratio:
                profile_.issues.append(f"{count} outliers ({profile_.outlier_ratio:.1%} > {config.max_outlier_ratio:.1%})")
        if profile_.missing_ratio > config.max_missing_ratio:
            profile_.issues.append(f"{missing} missing ({profile_.missing_ratio:.1%} > {config.max_missing_ratio:.1%})")
        columns.append(profile_)
    issues = [f"{c.name}: {i}" for c in columns for i in c.issues]
    if rows < config.min_rows:
        issues.insert(0, f"{rows} rows < {config.min_rows}")
    return QualityReport(dataset=dataset, run_id=run_id, created_at=datetime.now(timezone.utc), rows=rows,
                         config=config, columns=columns, issues=issues, passed=not issues)


# ---------------------------------------------------------------- reports


def report_keys(dataset: str, run_id: str) -> tuple[str, str]:
    base = f"{QUALITY_PREFIX}/{dataset}/{run_id}/report"
    return f"{base}.json", f"{base}.html"


def save(settings: Settings, report: QualityReport, s3=None) -> dict[str, str]:
    """Writes report.json and report.html under s3://processed/_quality/DATASET/RUN/."""
    s3 = s3 or s3_client.get_client(settings)
    json_key, html_key = report_keys(report.dataset, report.run_id or report.created_at.strftime("%Y%m%dT%H%M%S"))
    s3.put_object(Bucket=QUALITY_BUCKET, Key=json_key, Body=report.model_dump_json(indent=2).encode(),
                  ContentType="application/json")
    s3.put_object(Bucket=QUALITY_BUCKET, Key=html_key, Body=to_html(report).encode(), ContentType="text/html")
    return {"json": f"s3://{QUALITY_BUCKET}/{json_key}", "html": f"s3://{QUALITY_BUCKET}/{html_key}"}


def load(settings: Settings, uri: str, s3=None) -> QualityReport:
    bucket, key = s3_client.parse_uri(uri)
    body = (s3 or s3_client.get_client(settings)).get_object(Bucket=bucket, Key=key)["Body"].read()
    return QualityReport.model_validate(json.loads(body))


def _chart(report: QualityReport) -> str:
    """Bars of missing and outlier ratios per column, with the thresholds as dashed lines."""
    bar, gap, left, width = 14, 10, 130, 420
    height = len(report.columns) * (2 * bar + gap) + 40
    scale = max(0.25, max([c.missing_ratio for c in report.columns] + [c.outlier_ratio or 0 for c in report.columns]))
    x = lambda ratio: left + width * min(ratio, scale) / scale  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" height="{height}" role="img" '
             'aria-label="missing and outlier ratios per column" font-family="sans-serif" font-size="12" style="display:block;margin-bottom:1em">']
    for i, c in enumerate(report.columns):
        y = 20 + i * (2 * bar + gap)
        parts.append(f'<text x="{left - 6}" y="{y + bar + 4}" text-anchor="end">{html.escape(c.name)}</text>')
        for j, (ratio, colour, label) in enumerate([(c.missing_ratio, "#d9534f", "missing"),
                                                    (c.outlier_ratio or 0.0, "#f0ad4e", "outliers")]):
            top = y + j * bar
            parts.append(f'<rect x="{left}" y="{top}" width="{x(ratio) - left:.1f}" height="{bar - 2}" fill="{colour}">'
                         f'<title>{label}: {ratio:.1%}</title></rect>')
            parts.append(f'<text x="{x(ratio) + 4:.1f}" y="{top + bar - 4}">{ratio:.1%}</text>')
    for ratio, colour in [(report.config.max_missing_ratio, "#d9534f"), (report.config.max_outlier_ratio, "#f0ad4e")]:
        parts.append(f'<line x1="{x(ratio):.1f}" x2="{x(ratio):.1f}" y1="12" y2="{height - 20}" stroke="{colour}" '
                     'stroke-dasharray="4 3"/>')
    parts.append(f'<text x="{left}" y="{height - 4}">red: missing ratio, orange: outlier ratio; dashed: thresholds</text>')
    parts.append("</svg>")
    return "".join(parts)


def to_html(report: QualityReport) -> str:
    e = lambda v: html.escape("" if v is None else str(v))  # noqa: E731
    rows = "".join(
        f"<tr class=\"{'ok' if c.passed else 'bad'}\"><td>{e(c.name)}</td><td>{e(c.type)}</td><td>{c.missing}</td>"
        f"<td>{c.missing_ratio:.1%}</td><td>{c.distinct}</td><td>{e(c.min)}</td><td>{e(c.max)}</td>"
        f"<td>{e(c.outliers)}</td><td>{e('; '.join(c.issues))}</td></tr>"
        for c in report.columns
    )
    verdict = "PASSED" if report.passed else "FAILED"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Quality report {e(report.dataset)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:4px 8px;text-align:left}}tr.bad{{background:#fde2e1}}.PASSED{{color:#2e7d32}}.FAILED{{color:#c62828}}</style>
</head><body><h1>Data quality: {e(report.dataset)}</h1>
<p>Run {e(report.run_id)} &middot; {e(report.created_at.isoformat(timespec='seconds'))} &middot; {report.rows} rows &middot;
<strong class="{verdict}">{verdict}</strong></p>
<p>Outliers: {e(report.config.outlier_method)} &gt; {report.config.outlier_threshold}; thresholds: missing
&le; {report.config.max_missing_ratio:.0%}, outliers &le; {report.config.max_outlier_ratio:.0%} per column,
at least {report.config.min_rows} rows.</p>
{_chart(report)}
<table><tr><th>column</th><th>type</th><th>missing</th><th>missing %</th><th>distinct</th><th>min</th><th>max</th>
<th>outliers</th><th>issues</th></tr>{rows}</table>
<ul>{''.join(f'<li>{e(i)}</li>' for i in report.issues)}</ul></body></html>"""


def summary_table(report: QualityReport) -> Table:
    verdict = "[green]PASSED[/]" if report.passed else "[red]FAILED[/]"
    table = Table("column", "type", "missing", "missing %", "distinct", "min", "max", "outliers", "issues",
                  title=f"{report.dataset}: {report.rows} rows, {verdict}")
    for c in report.columns:
        table.add_row(c.name, c.type, str(c.missing), f"{c.missing_ratio:.1%}", str(c.distinct), str(c.min),
                      str(c.max), "-" if c.outliers is None else str(c.outliers),
                      "[red]" + "; ".join(c.issues) + "[/]" if c.issues else "")
    return table
