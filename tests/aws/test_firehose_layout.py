"""Firehose prefixes in the delivery job's terms, without a server."""

from datetime import datetime, timezone

import pytest

from aws.firehose.provider import layout
from aws.gateway.errors import AwsError

pytestmark = pytest.mark.unit

HOUR = datetime(2021, 4, 17, 13, tzinfo=timezone.utc)
FOLDERS = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"


def test_the_trades_lab_prefixes():
    prefix, error_prefix, folder = layout(
        f"raw-zone/stockdata/{FOLDERS}", f"raw-zone/stockdata_errors/!{{firehose:error-output-type}}/{FOLDERS}")
    assert (prefix, error_prefix) == ("raw-zone/stockdata/", "raw-zone/stockdata_errors/")
    assert folder.format(HOUR) == "year=2021/month=04/day=17/hour=13/"


def test_a_prefix_without_expressions_gets_firehose_s_default_folders():
    prefix, error_prefix, folder = layout("raw-test/", "")
    assert (prefix, error_prefix, folder.format(HOUR)) == ("raw-test/", "raw-test/processing-failed/",
                                                            "2021/04/17/13/")


@pytest.mark.parametrize("prefix, error_prefix, message", [
    (f"raw/{FOLDERS}", "", "ErrorOutputPrefix cannot be null or empty"),
    (f"raw/{FOLDERS}", "errors/", "must contain !{firehose:error-output-type}"),
    ("raw/!{timestamp:yyyy-MM-dd-mm}/", "e/!{firehose:error-output-type}/!{timestamp:yyyy-MM-dd-mm}/",
     "pattern letter other than"),
    ("raw/!{firehose:random-string}/", "e/!{firehose:error-output-type}/", "not supported here"),
    (f"raw/{FOLDERS}", "e/!{firehose:error-output-type}/!{timestamp:yyyy}/", "same time folders"),
])
def test_prefixes_the_delivery_cannot_follow_are_refused_with_the_reason(prefix, error_prefix, message):
    with pytest.raises(AwsError, match=message.replace("{", r"\{").replace("}", r"\}").replace("!", "!")):
        layout(prefix, error_prefix)
