"""Lab C's validation task, without the stack."""

import pytest

from labs.lab_c.tasks import validate_csv
from producers import lab_c as data

pytestmark = pytest.mark.unit
SCHEMA = {"Order_ID": "int", "Date": "date", "Product": "string", "Quantity": "int", "Unit_Price": "double",
          "Total_Sales": "double", "location": "string"}


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
