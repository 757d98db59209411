"""Lab C's sample data, validation and quality profile, without the stack."""

import csv
import io
import json
import re

import pytest

from governance import quality
from producers import company_data as data
from workflows.sales_tasks import validate_csv

SCHEMA = {"Order_ID": "int", "Date": "date", "Product": "string", "Quantity": "int", "Unit_Price": "double",
          "Total_Sales": "double", "location": "string"}


def test_generators_are_deterministic_and_in_their_native_formats():
    assert data.sales_csv(20, seed=1) == data.sales_csv(20, seed=1) != data.sales_csv(20, seed=2)
    rows = list(csv.DictReader(io.StringIO(data.sales_csv(20).decode())))
    assert len(rows) == 20 and set(data.SALES_COLUMNS) == set(rows[0]) and rows[0]["location"] == "London"
    events = [json.loads(line) for line in data.json_events(10).decode().splitlines()]
    assert len(events) == 10 and {"event_id", "ts", "event_type", "geo"} <= set(events[0])
    combined = re.compile(r'^\S+ - - \[[^]]+\] "(GET|POST) \S+ HTTP/1.1" \d{3} \d+ "[^"]*" "[^"]*"$')
    logs = data.server_logs(5).decode().splitlines()
    assert len(logs) == 5 and all(combined.match(line) for line in logs), logs


def test_the_sales_file_validates_and_the_different_schema_does_not():
    good = validate_csv(data.sales_csv(50), SCHEMA)
    assert good["valid"] and good["rows"] == 50 and good["errors"] == []
    bad = validate_csv(data.different_schema_csv(50), SCHEMA)
    assert not bad["valid"]
    assert bad["errors"] == ["missing columns: Date, Total_Sales, location"]


@pytest.mark.parametrize("body, error", [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8"),
    (b"just one line of text\n", "no CSV header"),
    (b"Order_ID,Date,Product,Quantity,Unit_Price,Total_Sales,location\n", "no data rows"),
    (b"Order_ID,Date,Product,Quantity,Unit_Price,Total_Sales,location\n1,2024-01-01,Pen,2,3.5,seven,London\n",
     "Total_Sales: 1 values are not double"),
    (b"Order_ID,Date,Product,Quantity,Unit_Price,Total_Sales,location\n1,2024-01-01,Pen,2\n", "do not have the header"),
])
def test_validation_reasons(body, error):
    result = validate_csv(body, SCHEMA)
    assert not result["valid"] and any(error in e for e in result["errors"]), result["errors"]


def test_missing_cells_pass_validation_they_are_a_quality_matter():
    body = data.sales_csv(30, missing={"Total_Sales": 4})
    assert validate_csv(body, SCHEMA)["valid"]


@pytest.mark.parametrize("seed", [1, 2, 3, 42])
def test_quality_profile_finds_exactly_the_injected_gaps_and_outliers(seed):
    rows = data.sales_rows(80, seed=seed, missing={"Total_Sales": 3, "Product": 2, "Date": 1},
                           outliers={"Total_Sales": 2, "Quantity": 1})
    table = quality.read_csv(data.to_csv(rows, data.SALES_COLUMNS), SCHEMA)
    report = quality.profile(table, "unit", quality.QualityConfig())
    assert report.rows == 80
    assert {c.name: c.missing for c in report.columns if c.name in SCHEMA} == {
        "Order_ID": 0, "Date": 1, "Product": 2, "Quantity": 0, "Unit_Price": 0, "Total_Sales": 3, "location": 0}
    assert {c.name: c.outliers for c in report.columns if c.outliers is not None} == {
        "Order_ID": 0, "Quantity": 1, "Unit_Price": 0, "Total_Sales": 2}
    sales = [r["Total_Sales"] for r in rows if r["Total_Sales"] is not None]
    assert report.column("Total_Sales").max == max(sales) and report.column("Total_Sales").min == min(sales)
    assert report.column("location").distinct == 1
    assert report.column("Product").distinct == len({r["Product"] for r in rows if r["Product"]})
    assert report.passed


def test_thresholds_fail_a_report_and_iqr_is_available():
    rows = data.sales_rows(40, seed=5, missing={"Total_Sales": 20})
    table = quality.read_csv(data.to_csv(rows, data.SALES_COLUMNS), SCHEMA)
    report = quality.profile(table, "unit", quality.QualityConfig(max_missing_ratio=0.2))
    assert not report.passed and report.issues == ["Total_Sales: 20 missing (50.0% > 20.0%)"]
    iqr = quality.profile(table, "unit", quality.QualityConfig(outlier_method="iqr", outlier_threshold=1.5,
                                                               max_missing_ratio=1))
    assert iqr.column("Quantity").outlier_bounds is not None


def test_html_report_has_an_inline_svg_chart_and_every_column():
    rows = data.sales_rows(30, missing={"Product": 3})
    report = quality.profile(quality.read_csv(data.to_csv(rows, data.SALES_COLUMNS), SCHEMA), "unit")
    page = quality.to_html(report)
    assert "<svg" in page and "</svg>" in page
    assert all(f"<td>{name}</td>" in page for name in SCHEMA)
    assert json.loads(report.model_dump_json())["columns"][0]["passed"] is True


def test_json_events_are_profiled_field_by_field():
    import pyarrow.json as pajson

    table = pajson.read_json(io.BytesIO(data.json_events(50)))
    report = quality.profile(table, "events", quality.QualityConfig(max_missing_ratio=1))
    names = {c.name for c in report.columns}
    assert {"device.os", "geo.city", "product.price"} <= names and "device" not in names
    assert report.column("geo.country").distinct == 1
    purchases = sum(1 for line in data.json_events(50).splitlines() if b'"product"' in line)
    assert report.column("product.price").missing == 50 - purchases
