"""The crawler's CSV reading: header or not, and the columns' names (no stack needed; crawls
against the real stack are in tests/labs)."""

import pytest

from aws.glue.crawler import CrawlError, CsvLayout, csv_layout, looks_like_header

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("rows", "header"), [
    ([["first_name", "age"], ["Ada", "36"]], True),
    ([["Ada", "36"], ["Grace", "45"]], False),             # a number in the first line: data
    ([["name", "city"], ["Ada", "London"]], False),        # text only: not different enough (Glue's rule)
    ([["name", "name"], ["Ada", "36"]], False),            # repeated names
    ([["name", ""], ["Ada", "36"]], False),                # an empty name
    ([["first_name", "age"]], False),                      # nothing to compare with
])
def test_a_header_is_recognised_as_glue_does(rows, header):
    assert looks_like_header(rows) is header


def test_headerless_csv_gets_col0_to_coln_or_the_callers_names():
    body = b"Ada,Lovelace,36,10.0.0.1\nGrace,Hopper,45,10.0.0.2\n"
    assert csv_layout("s3://b/k.csv", body, None, (), 100) == CsvLayout(False, ("col0", "col1", "col2", "col3"))
    named = csv_layout("s3://b/k.csv", body, None, ["First Name", "last_name", "age", "ip"], 100)
    assert named == CsvLayout(False, ("first_name", "last_name", "age", "ip"))
    with pytest.raises(CrawlError, match="4 fields per line, but 2 column names given"):
        csv_layout("s3://b/k.csv", body, None, ["a", "b"], 100)


def test_a_header_names_the_columns_unless_the_caller_says_otherwise():
    body = b'"First Name",age\nAda,36\n'
    assert csv_layout("s3://b/k.csv", body, None, (), 100) == CsvLayout(True, ("first_name", "age"))
    assert csv_layout("s3://b/k.csv", body, False, (), 100) == CsvLayout(False, ("col0", "col1"))
    assert csv_layout("s3://b/k.csv", b"name,city\nAda,London\n", True, (), 100) == CsvLayout(True, ("name", "city"))
