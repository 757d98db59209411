"""Lab C's data-quality profile and reports, without the stack."""

import io
import json

import pyarrow.json as pajson
import pytest

from labs.lab_c import quality
from producers import lab_c as data

pytestmark = pytest.mark.unit
SCHEMA = {"Order_ID": "int", "Date": "date", "Product": "string", "Quantity": "int", "Unit_Price": "double",
          "Total_Sales": "double", "location": "string"}


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
    table = pajson.read_json(io.BytesIO(data.json_events(50)))
    report = quality.profile(table, "events", quality.QualityConfig(max_missing_ratio=1))
    names = {c.name for c in report.columns}
    assert {"device.os", "geo.city", "product.price"} <= names and "device" not in names
    assert report.column("geo.country").distinct == 1
    purchases = sum(1 for line in data.json_events(50).splitlines() if b'"product"' in line)
    assert report.column("product.price").missing == 50 - purchases
