"""Clients nobody here wrote, against the running endpoint: the AWS CLI (PyPI awscli) with
--endpoint-url for every service, awswrangler (Athena, the Glue catalog, S3 datasets and a
crawler) and pyathena's DB-API cursor, configured only through the environment."""

from __future__ import annotations

import base64
import json

import awswrangler as wr
import pandas as pd
import pytest
from pyathena import connect

from services.s3.client import delete_prefix
from tests.aws.awskit import admin_keys, aws_cli, client, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]

BUCKET = "datalake"


@pytest.fixture
def place(settings, unique):
    prefix = f"test-aws/clients-{unique}/"
    yield prefix
    delete_prefix(settings, f"s3://{BUCKET}/{prefix}")


@pytest.fixture
def course_environment(settings, monkeypatch):
    """AWS_ENDPOINT_URL and the credentials in the environment, as course code has them."""
    access, secret = admin_keys(settings)
    for name, value in {"AWS_ENDPOINT_URL": settings.aws_endpoint_url, "AWS_ACCESS_KEY_ID": access,
                        "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": settings.s3_region}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def database(settings, unique, place):
    name = f"test_aws_clients_{unique}"
    glue = client(settings, "glue")
    glue.create_database(DatabaseInput={"Name": name, "LocationUri": f"s3://{BUCKET}/{place}catalog/"})
    yield name
    glue.delete_database(Name=name)


def cli_json(settings, *args: str) -> dict:
    done = aws_cli(settings, *args, "--endpoint-url", settings.aws_endpoint_url)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


def test_the_aws_cli_drives_s3_firehose_glue_athena_and_sts(settings, place, database, unique, tmp_path):
    assert cli_json(settings, "sts", "get-caller-identity")["Arn"] == "arn:aws:iam::000000000000:user/admin"
    upload = tmp_path / "trades.json"
    upload.write_text('{"symbol": "BTC_USD", "price": 10792.34}\n')
    done = aws_cli(settings, "s3", "cp", str(upload), f"s3://{BUCKET}/{place}raw/trades.json",
                   "--endpoint-url", settings.aws_endpoint_url)
    assert done.returncode == 0, done.stderr
    listed = aws_cli(settings, "s3", "ls", f"s3://{BUCKET}/{place}raw/", "--endpoint-url", settings.aws_endpoint_url)
    assert "trades.json" in listed.stdout

    name = f"test-aws-cli-{unique}"
    destination = json.dumps({"RoleARN": "arn:aws:iam::000000000000:role/r", "BucketARN": f"arn:aws:s3:::{BUCKET}",
                              "Prefix": f"{place}firehose/", "BufferingHints": {"SizeInMBs": 1,
                                                                                 "IntervalInSeconds": 1}})
    cli_json(settings, "firehose", "create-delivery-stream", "--delivery-stream-name", name,
             "--extended-s3-destination-configuration", destination)
    try:
        record = json.dumps({"Data": base64.b64encode(b'{"from": "the cli"}\n').decode()})
        assert "RecordId" in cli_json(settings, "firehose", "put-record", "--delivery-stream-name", name,
                                      "--record", record)
        described = cli_json(settings, "firehose", "describe-delivery-stream", "--delivery-stream-name", name)
        assert described["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE"
    finally:
        cli_json(settings, "firehose", "delete-delivery-stream", "--delivery-stream-name", name)

    crawler = f"test-aws-cli-{unique}"
    cli_json(settings, "glue", "create-crawler", "--name", crawler, "--role", "r", "--database-name", database,
             "--targets", json.dumps({"S3Targets": [{"Path": f"s3://{BUCKET}/{place}raw/"}]}))
    try:
        cli_json(settings, "glue", "start-crawler", "--name", crawler)
        wait_for("the crawler", lambda: cli_json(settings, "glue", "get-crawler", "--name", crawler)[
            "Crawler"]["State"] == "READY")
        tables = cli_json(settings, "glue", "get-tables", "--database-name", database)["TableList"]
        assert [t["Name"] for t in tables] == ["raw"]
    finally:
        cli_json(settings, "glue", "delete-crawler", "--name", crawler)

    query_id = cli_json(settings, "athena", "start-query-execution", "--query-string", "SELECT symbol FROM raw",
                        "--query-execution-context", f"Database={database}",
                        "--result-configuration", f"OutputLocation=s3://{BUCKET}/{place}athena/")["QueryExecutionId"]
    wait_for("the query", lambda: cli_json(settings, "athena", "get-query-execution", "--query-execution-id",
                                           query_id)["QueryExecution"]["Status"]["State"] == "SUCCEEDED")
    rows = cli_json(settings, "athena", "get-query-results", "--query-execution-id", query_id)["ResultSet"]["Rows"]
    assert [r["Data"][0]["VarCharValue"] for r in rows] == ["symbol", "BTC_USD"]
    failed = aws_cli(settings, "athena", "get-query-execution", "--query-execution-id", "nope",
                     "--endpoint-url", settings.aws_endpoint_url)
    assert failed.returncode != 0 and "(InvalidRequestException)" in failed.stderr


@pytest.mark.usefixtures("course_environment")
def test_awswrangler_writes_a_dataset_catalogs_it_and_reads_it_back_through_athena(settings, place, database):
    trades = pd.DataFrame({"symbol": ["BTC_USD", "ETH_USD", "BTC_USD"], "price": [10792.34, 359.38, 10795.0],
                           "trans_id": [124289114, 124290121, 124290529], "day": ["01", "01", "02"]})
    wr.s3.to_parquet(trades, path=f"s3://{BUCKET}/{place}trades/", dataset=True, partition_cols=["day"],
                     database=database, table="trades")
    assert [t["Name"] for t in wr.catalog.get_tables(database=database)] == ["trades"]
    assert wr.catalog.get_table_types(database=database, table="trades") == \
        {"symbol": "string", "price": "double", "trans_id": "bigint", "day": "string"}
    assert sorted(wr.catalog.get_partitions(database=database, table="trades").values()) == [["01"], ["02"]]

    read = wr.athena.read_sql_query("SELECT symbol, price, trans_id, day FROM trades", database=database,
                                    s3_output=f"s3://{BUCKET}/{place}athena/")  # CTAS, the default
    read = read.sort_values("trans_id", ignore_index=True)  # a CTAS keeps no order, on Athena neither
    pd.testing.assert_frame_equal(read.astype({"trans_id": "int64", "day": "object", "symbol": "object"}),
                                  trades.astype({"day": "object"}), check_dtype=False)

    wr.s3.to_parquet(trades.drop(columns="day"), path=f"s3://{BUCKET}/{place}crawled/day=03/part.parquet")
    glue = client(settings, "glue")
    crawler = f"{database}-crawler"
    glue.create_crawler(Name=crawler, Role="r", DatabaseName=database,
                        Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/{place}crawled/"}]})
    try:
        glue.start_crawler(Name=crawler)
        wait_for("the crawler", lambda: glue.get_crawler(Name=crawler)["Crawler"]["State"] == "READY"
                 and "LastCrawl" in glue.get_crawler(Name=crawler)["Crawler"])
    finally:
        glue.delete_crawler(Name=crawler)
    crawled = wr.athena.read_sql_query("SELECT count(*) AS n, max(day) AS day FROM crawled", database=database,
                                       s3_output=f"s3://{BUCKET}/{place}athena/", ctas_approach=False)
    assert crawled.to_dict("records") == [{"n": 3, "day": "03"}]
    assert {"trades", "crawled"} <= {t["Name"] for t in wr.catalog.get_tables(database=database)}


@pytest.mark.usefixtures("course_environment")
def test_pyathena_cursor(settings, place):
    cursor = connect(s3_staging_dir=f"s3://{BUCKET}/{place}pyathena/", schema_name="default",
                     poll_interval=0.1).cursor()
    cursor.execute("SELECT n, 'trade ' || CAST(n AS varchar) AS label, DATE '2020-10-01' AS day "
                   "FROM UNNEST(sequence(1, 3)) AS t(n) WHERE n > %(low)d ORDER BY n", {"low": 1})
    assert [d[0:2] for d in cursor.description] == [("n", "bigint"), ("label", "varchar"), ("day", "date")]
    rows = cursor.fetchall()
    assert [(n, label) for n, label, _ in rows] == [(2, "trade 2"), (3, "trade 3")]
    assert str(rows[0][2]) == "2020-10-01"
    with pytest.raises(Exception, match="COLUMN_NOT_FOUND"):
        cursor.execute("SELECT missing FROM (VALUES 1) AS t(x)")
