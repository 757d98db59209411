"""Athena's shapes made without a server: statement types, parameters, values as Athena prints
them, the result files, and the DDL translation of what awswrangler and Glue send."""

from datetime import date

import pytest

from aws.athena.provider import statement_types, with_parameters
from aws.athena.results import athena_text, column_info, csv_bytes, java_double, read_csv
from aws.athena.sql import Statement, translate
from aws.gateway.errors import AwsError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("sql, types", [
    ("SELECT 1", ("DML", "SELECT")),
    ("-- the hourly top\nWITH t AS (SELECT 1) SELECT * FROM t", ("DML", "SELECT")),
    ("INSERT INTO t SELECT 1", ("DML", "INSERT")),
    ('CREATE TABLE "db"."t" WITH (format = \'PARQUET\') AS SELECT 1', ("DML", "CREATE_TABLE_AS_SELECT")),
    ("CREATE EXTERNAL TABLE t (a string) LOCATION 's3://b/t/'", ("DDL", "CREATE_EXTERNAL")),
    ("MSCK REPAIR TABLE processed_stockdata", ("DDL", "MSCK_REPAIR_TABLE")),
    ("DROP TABLE IF EXISTS t", ("DDL", "DROP_TABLE")),
    ("SHOW TABLES", ("UTILITY", "SHOW_TABLES")),
    ("DESCRIBE t", ("UTILITY", "DESCRIBE_T")),
])
def test_statement_types_as_athena_reports_them(sql, types):
    assert statement_types(sql) == types


def test_execution_parameters_fill_the_placeholders_outside_strings():
    assert with_parameters("SELECT * FROM t WHERE s = ? AND note = '?' AND n > ?", ["'BTC_USD'", "10"]) == \
        "SELECT * FROM t WHERE s = 'BTC_USD' AND note = '?' AND n > 10"
    with pytest.raises(AwsError, match="2 parameter placeholders but 1"):
        with_parameters("SELECT ?, ?", ["1"])


@pytest.mark.parametrize("value, printed", [
    (10.0, "10.0"), (1416.9921319999999, "1416.9921319999999"), (123456789.0, "1.23456789E8"),
    (1e-4, "1.0E-4"), (0.001, "0.001"), (-2.5e-10, "-2.5E-10"), (float("nan"), "NaN"), (float("-inf"), "-Infinity")])
def test_doubles_print_as_java_prints_them(value, printed):
    assert java_double(value) == printed


def test_values_print_as_athena_prints_them():
    assert athena_text(True, "boolean") == "true"
    assert athena_text(None, "varchar") is None
    assert athena_text([1, "x"], "row(i integer, s varchar)") == "{i=1, s=x}"
    assert athena_text({"k": "1.5"}, "map(varchar(1), decimal(2, 1))") == "{k=1.5}"
    assert athena_text([[1.0, None]], "array(array(double))") == "[[1.0, null]]"
    assert athena_text("YWJj", "varbinary") == "61 62 63"
    assert athena_text("2020-10-01 00:00:00.000", "timestamp(3)") == "2020-10-01 00:00:00.000"
    assert athena_text(str(date(2020, 10, 1)), "date") == "2020-10-01"


def test_column_info_carries_athena_s_type_names_and_precision():
    assert {k: column_info("p", "decimal(10, 2)")[k] for k in ("Type", "Precision", "Scale")} == \
        {"Type": "decimal", "Precision": 10, "Scale": 2}
    assert column_info("f", "real")["Type"] == "float"
    assert (column_info("s", "varchar")["Precision"], column_info("s", "varchar")["CaseSensitive"]) == \
        (2147483647, True)


def test_the_result_csv_quotes_every_value_and_leaves_null_empty():
    rows = [["a", None, 'x"y'], [None, "", None], ["1,2", "two\nlines", None]]
    body = csv_bytes(["c1", "c2", "c3"], rows)
    assert body.splitlines()[:2] == [b'"c1","c2","c3"', b'"a",,"x""y"']
    assert read_csv(body) == [["c1", "c2", "c3"], *rows]
    assert read_csv(csv_bytes(["only"], [[None], ["v"]])) == [["only"], [None], ["v"]]


def test_ctas_properties_of_athena_become_trino_s():
    sql = """CREATE TABLE "db"."temp_table_1"
WITH(
    external_location = 's3://b/out/temp_table_1',
    write_compression = 'SNAPPY',
    field_delimiter = ',',
    partitioned_by = ARRAY['a', 'b'],
    format = 'TEXTFILE')
AS SELECT 'x,(y)' AS a, 1 AS b FROM t WHERE f(1, 2) = 3"""
    statement = translate(Statement(sql), "db")
    assert statement.translated == (
        'CREATE TABLE "db"."temp_table_1"\nWITH(external_location = \'s3://b/out/temp_table_1\', '
        "textfile_field_separator = ',', partitioned_by = ARRAY['a', 'b'], format = 'TEXTFILE')\n"
        "AS SELECT 'x,(y)' AS a, 1 AS b FROM t WHERE f(1, 2) = 3")
    assert statement.notes == ["write_compression = 'SNAPPY': not applied (Trino writes with its default codec)"]


def test_hive_ddl_keeps_the_table_comment_and_its_parameters():
    translated = translate(Statement(
        "CREATE EXTERNAL TABLE x (a string) COMMENT 'trades' STORED AS PARQUET LOCATION 's3://b/x/' "
        "TBLPROPERTIES ('classification'='parquet', 'skip.header.line.count'='1')"), "db").translated
    assert "COMMENT 'trades'" in translated and "skip_header_line_count = 1" in translated
    assert "extra_properties = MAP(ARRAY['classification'], ARRAY['parquet'])" in translated
