"""Athena through the endpoint, with the real boto3: queries run on Trino, answered in Athena's
shapes, with their results left in the output location as Athena leaves them."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from services.s3.client import delete_prefix
from services.s3.client import get_client as s3_client
from tests.aws.awskit import client, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]

BUCKET = "datalake"


@pytest.fixture
def athena(settings):
    return client(settings, "athena")


@pytest.fixture
def place(settings, unique):
    prefix = f"test-aws/athena-{unique}/"
    yield prefix
    delete_prefix(settings, f"s3://{BUCKET}/{prefix}")


def run(athena, sql: str, output: str, **params) -> dict:
    """Start a query and poll it to its final state, as course code does."""
    query_id = athena.start_query_execution(QueryString=sql, ResultConfiguration={"OutputLocation": output},
                                            **params)["QueryExecutionId"]
    return wait_for(f"query {sql[:40]}", lambda: (q := athena.get_query_execution(QueryExecutionId=query_id)[
        "QueryExecution"])["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED") and q, every_s=0.1)


def values(page: dict) -> list[list[str | None]]:
    return [[cell.get("VarCharValue") for cell in row["Data"]] for row in page["ResultSet"]["Rows"]]


def test_a_select_answers_in_athena_s_shape_and_leaves_its_results_in_s3(settings, athena, place):
    output = f"s3://{BUCKET}/{place}results/"
    sql = ("SELECT n, 'trade ' || CAST(n AS varchar) AS label, n * 1.5e0 AS price, IF(n = 3, NULL, n > 10) AS big, "
           "TIMESTAMP '2020-10-01 00:00:00.000' AS ts FROM UNNEST(sequence(1, 25)) AS t(n) ORDER BY n")
    execution = run(athena, sql, output, QueryExecutionContext={"Database": "lab_b"})
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    assert (execution["StatementType"], execution["QueryExecutionContext"]["Database"]) == ("DML", "lab_b")
    statistics = execution["Statistics"]
    assert statistics["TotalExecutionTimeInMillis"] >= statistics["EngineExecutionTimeInMillis"] >= 0
    assert execution["ResultConfiguration"]["OutputLocation"] == f"{output}{execution['QueryExecutionId']}.csv"

    pages = list(athena.get_paginator("get_query_results").paginate(
        QueryExecutionId=execution["QueryExecutionId"], PaginationConfig={"PageSize": 10}))
    rows = [row for page in pages for row in values(page)]
    assert len(pages) == 3 and rows[0] == ["n", "label", "price", "big", "ts"]  # the header row first
    assert rows[1] == ["1", "trade 1", "1.5", "false", "2020-10-01 00:00:00.000"]
    assert rows[3][3] is None and rows[25][0] == "25" and len(rows) == 26
    columns = pages[0]["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
    assert [(c["Name"], c["Type"]) for c in columns] == \
        [("n", "bigint"), ("label", "varchar"), ("price", "double"), ("big", "boolean"), ("ts", "timestamp")]

    s3 = s3_client(settings)
    key = f"{place}results/{execution['QueryExecutionId']}.csv"
    csv = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()
    assert csv[0] == '"n","label","price","big","ts"' and csv[3] == '"3","trade 3","4.5",,"2020-10-01 00:00:00.000"'
    metadata = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{key}.metadata")["Body"].read())
    assert [c["Name"] for c in metadata["ColumnInfo"]] == ["n", "label", "price", "big", "ts"]
    assert execution["QueryExecutionId"] in athena.list_query_executions()["QueryExecutionIds"]


def test_athena_ddl_creates_and_repairs_a_partitioned_table(settings, athena, place, unique):
    s3 = s3_client(settings)
    for symbol, hour in (("BTC_USD", 0), ("ETH_USD", 0), ("BTC_USD", 1)):
        sink = io.BytesIO()
        pq.write_table(pa.table({"price": [10792.34], "trans_id": [124289114 + hour]}), sink)
        s3.put_object(Bucket=BUCKET, Key=f"{place}processed-zone/stockdata/symbol={symbol}/year=2020/month=10/"
                                         f"day=1/hour={hour}/part.parquet", Body=sink.getvalue())
    table = f"test_aws_processed_{unique}"
    output = f"s3://{BUCKET}/{place}results/"
    created = run(athena, f"""CREATE EXTERNAL TABLE {table}(
  price double,
  trans_id bigint)
PARTITIONED BY (symbol string, year integer, month integer, day integer, hour integer)
ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'
STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat'
LOCATION 's3://{BUCKET}/{place}processed-zone/stockdata/'""", output, QueryExecutionContext={"Database": "default"})
    try:
        assert created["Status"]["State"] == "SUCCEEDED", created["Status"]
        assert (created["StatementType"], created["SubstatementType"]) == ("DDL", "CREATE_EXTERNAL")
        repaired = run(athena, f"MSCK REPAIR TABLE {table}", output, QueryExecutionContext={"Database": "default"})
        assert repaired["Status"]["State"] == "SUCCEEDED", repaired["Status"]
        counted = run(athena, f"SELECT count(*) FROM {table} WHERE hour = 0 AND day = 1 AND month = 10 AND "
                              f"year = 2020 AND symbol = 'BTC_USD'", output,
                      QueryExecutionContext={"Database": "default"})
        assert values(athena.get_query_results(QueryExecutionId=counted["QueryExecutionId"]))[1:] == [["1"]]
        metadata = athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="default",
                                             TableName=table)["TableMetadata"]
        assert [k["Name"] for k in metadata["PartitionKeys"]] == ["symbol", "year", "month", "day", "hour"]
        assert metadata["Parameters"]["location"].rstrip("/").endswith(f"{place}processed-zone/stockdata")
        listed = athena.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="default",
                                            Expression=f"{table}*")["TableMetadataList"]
        assert [(t["Name"], [c["Name"] for c in t["Columns"]]) for t in listed] == [(table, ["price", "trans_id"])]
    finally:
        run(athena, f"DROP TABLE IF EXISTS {table}", output, QueryExecutionContext={"Database": "default"})


def test_failures_cancellation_and_missing_places_answer_as_athena_does(settings, athena, place):
    output = f"s3://{BUCKET}/{place}results/"
    failed = run(athena, "SELECT no_such_column FROM (VALUES 1) AS t(x)", output)
    status = failed["Status"]
    assert status["State"] == "FAILED" and status["StateChangeReason"].startswith("COLUMN_NOT_FOUND: line 1:8:")
    assert (status["AthenaError"]["ErrorCategory"], status["AthenaError"]["Retryable"]) == (2, False)
    with pytest.raises(athena.exceptions.InvalidRequestException, match="Final query state: FAILED"):
        athena.get_query_results(QueryExecutionId=failed["QueryExecutionId"])

    slow = athena.start_query_execution(
        QueryString="SELECT count(*) FROM UNNEST(sequence(1, 10000)) a(x) CROSS JOIN UNNEST(sequence(1, 10000)) b(y) "
                    "CROSS JOIN UNNEST(sequence(1, 1000)) c(z)",
        ResultConfiguration={"OutputLocation": output})["QueryExecutionId"]
    wait_for("the query started", lambda: athena.get_query_execution(QueryExecutionId=slow)[
        "QueryExecution"]["Status"]["State"] != "QUEUED", every_s=0.1)
    athena.stop_query_execution(QueryExecutionId=slow)
    stopped = wait_for("the query cancelled", lambda: (s := athena.get_query_execution(QueryExecutionId=slow)[
        "QueryExecution"]["Status"])["State"] in ("CANCELLED", "FAILED", "SUCCEEDED") and s)
    assert stopped["State"] == "CANCELLED"

    with pytest.raises(athena.exceptions.InvalidRequestException, match="No output location provided"):
        athena.start_query_execution(QueryString="SELECT 1")
    with pytest.raises(athena.exceptions.InvalidRequestException, match="was not found"):
        athena.get_query_execution(QueryExecutionId="00000000-0000-0000-0000-000000000000")
    token = "a-token-the-sdk-would-send-on-a-retry"
    first = athena.start_query_execution(QueryString="SELECT 1", ClientRequestToken=token,
                                         ResultConfiguration={"OutputLocation": output})["QueryExecutionId"]
    again = athena.start_query_execution(QueryString="SELECT 1", ClientRequestToken=token,
                                         ResultConfiguration={"OutputLocation": output})["QueryExecutionId"]
    assert first == again, "a retried start runs the query once"


def test_workgroups_give_the_result_location(settings, athena, place, unique):
    name = f"test-aws-{unique}"
    output = f"s3://{BUCKET}/{place}workgroup/"
    athena.create_work_group(Name=name, Description="course workgroup",
                             Configuration={"ResultConfiguration": {"OutputLocation": output}})
    try:
        with pytest.raises(ClientError, match="already created"):
            athena.create_work_group(Name=name)
        assert athena.get_work_group(WorkGroup=name)["WorkGroup"]["Configuration"]["ResultConfiguration"] == \
            {"OutputLocation": output}
        query_id = athena.start_query_execution(QueryString="SELECT 42", WorkGroup=name)["QueryExecutionId"]
        wait_for("the query", lambda: athena.get_query_execution(QueryExecutionId=query_id)[
            "QueryExecution"]["Status"]["State"] == "SUCCEEDED", every_s=0.1)
        assert values(athena.get_query_results(QueryExecutionId=query_id)) == [["_col0"], ["42"]]
        assert athena.list_query_executions(WorkGroup=name)["QueryExecutionIds"] == [query_id]
        athena.update_work_group(WorkGroup=name, ConfigurationUpdates={
            "ResultConfigurationUpdates": {"RemoveOutputLocation": True}})
        with pytest.raises(athena.exceptions.InvalidRequestException, match="No output location provided"):
            athena.start_query_execution(QueryString="SELECT 1", WorkGroup=name)
        assert name in [w["Name"] for w in athena.list_work_groups()["WorkGroups"]]
    finally:
        athena.delete_work_group(WorkGroup=name, RecursiveDeleteOption=True)
    assert athena.list_data_catalogs()["DataCatalogsSummary"][0]["CatalogName"] == "AwsDataCatalog"
    assert {"default", "lab_b"} <= {d["Name"] for d in athena.list_databases(CatalogName="AwsDataCatalog")[
        "DatabaseList"]}
    with pytest.raises(athena.exceptions.MetadataException):
        athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="default", TableName="no_such_table")


@pytest.mark.parametrize(("sql", "reason"), [
    ("SELECT `x FROM t", "FAILED: cannot parse as Athena SQL: Error tokenizing"),
    ("SELECT `x` FROM (SELECT " + "(" * 400 + "1" + ")" * 400 + " AS x) t",
     "FAILED: the statement is nested too deeply to translate"),
    ("CREATE EXTERNAL TABLE t (a " + "struct<a:" * 800 + "int" + ">" * 800 + ") LOCATION 's3://datalake/t/'",
     "FAILED: the statement is nested too deeply to translate"),
], ids=["an unclosed backquote", "400 parentheses with a backquote", "800 nested structs"])
def test_sql_the_translation_cannot_read_fails_with_the_cause(athena, place, sql, reason):
    """Backquoted SQL and Hive DDL go through sqlglot before Trino: what it cannot read ends FAILED,
    naming why, as Athena ends a query it cannot parse (these stayed RUNNING for good)."""
    status = run(athena, sql, f"s3://{BUCKET}/{place}results/")["Status"]
    assert status["State"] == "FAILED" and status["StateChangeReason"].startswith(reason), status
    assert (status["AthenaError"]["ErrorCategory"], status["AthenaError"]["Retryable"]) == (2, False)


def test_parameters_for_a_query_that_cannot_be_read_are_refused(athena, place):
    with pytest.raises(athena.exceptions.InvalidRequestException, match="cannot be read to place its parameters"):
        athena.start_query_execution(QueryString="SELECT ? WHERE 'x' = 'unclosed", ExecutionParameters=["1"],
                                     ResultConfiguration={"OutputLocation": f"s3://{BUCKET}/{place}results/"})
