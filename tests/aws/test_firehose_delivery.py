"""The Firehose stand-in's record checks (no stack needed; delivery itself is in tests/labs)."""

import pytest

from aws.firehose.delivery import csv_line

pytestmark = pytest.mark.unit


def test_a_csv_record_is_delivered_as_it_came_one_line_each():
    assert csv_line(b"Ada,Lovelace,36,10.0.0.1") == (b"Ada,Lovelace,36,10.0.0.1\n", "", "")
    assert csv_line(b'"Lovelace, Ada",36\r\n') == (b'"Lovelace, Ada",36\n', "", "")
    assert csv_line(b"Ada,Lovelace,36,10.0.0.1", fields=4)[0] is not None


@pytest.mark.parametrize(("value", "error", "message"), [
    (None, "empty-record", "empty"),
    (b"  \n", "empty-record", "empty"),
    (b"\xff\xfe,1", "not-utf8", "not UTF-8"),
    (b"Ada,1\nGrace,2", "multi-line", "2 lines in one record"),
    (b'Ada,"Lovelace', "not-csv", "not a CSV line"),
    (b"Ada,Lovelace,36", "field-count", "3 fields where the stream declares 4"),
])
def test_bad_csv_records_get_an_error_type_and_a_reason(value, error, message):
    line, kind, reason = csv_line(value, fields=4)
    assert line is None and kind == error and message in reason
