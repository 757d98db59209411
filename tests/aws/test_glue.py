"""The Glue Data Catalog and crawlers through the endpoint, with the real boto3: what Glue answers
is what the metastore holds and what Trino reads."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.s3.client import delete_prefix
from services.s3.client import get_client as s3_client
from services.trino.client import query
from tests.aws.awskit import client, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]

BUCKET = "datalake"
PARQUET = {"InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
           "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
           "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                         "Parameters": {"serialization.format": "1"}}}


@pytest.fixture
def glue(settings):
    return client(settings, "glue")


@pytest.fixture
def database(settings, glue, unique):
    """A fresh Glue database and S3 prefix, dropped (tables and files) afterwards."""
    name = f"test_aws_{unique}"
    glue.create_database(DatabaseInput={"Name": name, "LocationUri": f"s3://{BUCKET}/test-aws/glue-{unique}/"})
    yield name
    glue.delete_database(Name=name)
    delete_prefix(settings, f"s3://{BUCKET}/test-aws/glue-{unique}/")


def put_parquet(settings, key: str, rows: list[dict]) -> None:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    s3_client(settings).put_object(Bucket=BUCKET, Key=key, Body=sink.getvalue())


def test_databases(glue, database, unique):
    described = glue.get_database(Name=database)["Database"]
    assert described["LocationUri"].rstrip("/") == f"s3://{BUCKET}/test-aws/glue-{unique}"
    assert described["CatalogId"] == "000000000000"
    names = [d["Name"] for page in glue.get_paginator("get_databases").paginate() for d in page["DatabaseList"]]
    assert {"default", "lab_b", database} <= set(names)
    with pytest.raises(glue.exceptions.AlreadyExistsException):
        glue.create_database(DatabaseInput={"Name": database})
    with pytest.raises(glue.exceptions.EntityNotFoundException, match="Database nowhere_at_all not found"):
        glue.get_database(Name="nowhere_at_all")


def test_a_table_and_its_partitions_as_awswrangler_registers_them(settings, glue, database, unique):
    location = f"s3://{BUCKET}/test-aws/glue-{unique}/trades/"
    for day in ("01", "02"):
        put_parquet(settings, f"test-aws/glue-{unique}/trades/day={day}/part-0.parquet",
                    [{"symbol": "BTC_USD", "price": 10792.34, "trans_id": int(day)}])
    glue.create_table(DatabaseName=database, TableInput={
        "Name": "trades", "TableType": "EXTERNAL_TABLE", "Description": "trades by day",
        "Parameters": {"classification": "parquet", "compressionType": "snappy"},
        "PartitionKeys": [{"Name": "day", "Type": "string"}],
        "StorageDescriptor": {**PARQUET, "Location": location, "Columns": [
            {"Name": "symbol", "Type": "string", "Comment": "pair"}, {"Name": "price", "Type": "double"},
            {"Name": "trans_id", "Type": "bigint"}]}})
    with pytest.raises(glue.exceptions.AlreadyExistsException):
        glue.create_table(DatabaseName=database, TableInput={"Name": "trades", "StorageDescriptor": {
            **PARQUET, "Location": location, "Columns": []}})
    with pytest.raises(glue.exceptions.InvalidInputException, match="cannot parse as Hive DDL: Expecting >") as bad:
        glue.create_table(DatabaseName=database, TableInput={"Name": "unclosed", "StorageDescriptor": {
            **PARQUET, "Location": location, "Columns": [{"Name": "a", "Type": "struct<a:int"}]}})
    assert "\x1b" not in str(bad.value), "plain text, not the parser's terminal underline"

    table = glue.get_table(DatabaseName=database, Name="trades")["Table"]
    descriptor = table["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in descriptor["Columns"]] == \
        [("symbol", "string"), ("price", "double"), ("trans_id", "bigint")]
    assert descriptor["Columns"][0]["Comment"] == "pair"
    assert table["PartitionKeys"] == [{"Name": "day", "Type": "string"}]
    assert (descriptor["Location"].rstrip("/"), descriptor["InputFormat"], table["TableType"]) == \
        (location.rstrip("/"), PARQUET["InputFormat"], "EXTERNAL_TABLE")
    assert descriptor["SerdeInfo"]["SerializationLibrary"] == PARQUET["SerdeInfo"]["SerializationLibrary"]
    assert table["Parameters"]["classification"] == "parquet" and table["Description"] == "trades by day"

    errors = glue.batch_create_partition(DatabaseName=database, TableName="trades", PartitionInputList=[
        {"Values": [day], "StorageDescriptor": {**PARQUET, "Location": f"{location}day={day}/"}}
        for day in ("01", "02")])["Errors"]
    assert errors == []
    again = glue.batch_create_partition(DatabaseName=database, TableName="trades", PartitionInputList=[
        {"Values": ["01"], "StorageDescriptor": {"Location": f"{location}day=01/"}},
        {"Values": ["03"], "StorageDescriptor": {"Location": f"s3://{BUCKET}/elsewhere/"}}])["Errors"]
    assert [e["ErrorDetail"]["ErrorCode"] for e in again] == ["AlreadyExistsException", "InvalidInputException"]
    partitions = glue.get_partitions(DatabaseName=database, TableName="trades")["Partitions"]
    assert [(p["Values"], p["StorageDescriptor"]["Location"]) for p in partitions] == \
        [(["01"], f"{location}day=01"), (["02"], f"{location}day=02")]
    assert [p["Values"] for p in glue.get_partitions(DatabaseName=database, TableName="trades",
                                                     Expression="day = '02'")["Partitions"]] == [["02"]]
    assert query(settings, f'SELECT day, trans_id FROM hive."{database}".trades ORDER BY day') == \
        [["01", 1], ["02", 2]]

    table["StorageDescriptor"]["Columns"].append({"Name": "amount", "Type": "double"})
    glue.update_table(DatabaseName=database, TableInput={key: table[key] for key in (
        "Name", "StorageDescriptor", "PartitionKeys", "TableType", "Parameters")})
    columns = glue.get_table(DatabaseName=database, Name="trades")["Table"]["StorageDescriptor"]["Columns"]
    assert columns[-1] == {"Name": "amount", "Type": "double"}
    table["StorageDescriptor"]["Columns"] += [{"Name": "fee", "Type": "double"},
                                              {"Name": "venue", "Type": "no such type"}]
    with pytest.raises(glue.exceptions.InvalidInputException, match="venue: 'no such type' is not a Hive type"):
        glue.update_table(DatabaseName=database, TableInput={key: table[key] for key in (
            "Name", "StorageDescriptor", "PartitionKeys", "TableType", "Parameters")})
    columns = glue.get_table(DatabaseName=database, Name="trades")["Table"]["StorageDescriptor"]["Columns"]
    assert columns[-1]["Name"] == "amount", "a refused update adds no column, not even the valid one"
    assert [t["Name"] for t in glue.get_tables(DatabaseName=database)["TableList"]] == ["trades"]

    glue.delete_table(DatabaseName=database, Name="trades")
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_table(DatabaseName=database, Name="trades")
    kept = s3_client(settings).list_objects_v2(Bucket=BUCKET, Prefix=f"test-aws/glue-{unique}/trades/")
    assert kept["KeyCount"] == 2, "DeleteTable drops the metadata only, as Glue does"


def test_a_crawler_registers_the_raw_zone_as_the_trades_lab_does(settings, glue, database, unique):
    prefix = f"test-aws/glue-{unique}/raw-zone/stockdata/"
    trades = [{"transaction_ts": 1601510472 + i, "symbol": "BTC_USD", "price": 10792.34, "type": "buy",
               "trans_id": 124289114 + i} for i in range(4)]
    s3 = s3_client(settings)
    for hour, chunk in (("00", trades[:2]), ("01", trades[2:])):
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}year=2020/month=10/day=01/hour={hour}/part.json",
                      Body="".join(json.dumps(t) + "\n" for t in chunk).encode())
    name = f"test-aws-crawler-{unique}"
    glue.create_crawler(Name=name, Role="arn:aws:iam::000000000000:role/crawler-role", DatabaseName=database,
                        TablePrefix="crawler_", Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/{prefix}"}]})
    try:
        with pytest.raises(glue.exceptions.AlreadyExistsException):
            glue.create_crawler(Name=name, Role="r", DatabaseName=database,
                                Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/{prefix}"}]})
        assert glue.get_crawler(Name=name)["Crawler"]["State"] == "READY"
        glue.start_crawler(Name=name)
        crawler = wait_for("the crawl", lambda: (c := glue.get_crawler(Name=name)["Crawler"])["State"] == "READY"
                           and "LastCrawl" in c and c)
        assert crawler["LastCrawl"]["Status"] == "SUCCEEDED", crawler["LastCrawl"]
        assert name in [c["Name"] for c in glue.get_crawlers()["Crawlers"]]

        table = glue.get_table(DatabaseName=database, Name="crawler_stockdata")["Table"]
        assert [k["Name"] for k in table["PartitionKeys"]] == ["year", "month", "day", "hour"]
        assert {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]} == {
            "transaction_ts": "bigint", "symbol": "string", "price": "double", "type": "string", "trans_id": "bigint"}
        assert table["Parameters"]["classification"] == "json"
        assert len(glue.get_partitions(DatabaseName=database, TableName="crawler_stockdata")["Partitions"]) == 2
        assert query(settings, f'SELECT count(*) FROM hive."{database}".crawler_stockdata WHERE hour = \'01\'') == [[2]]
    finally:
        glue.delete_crawler(Name=name)
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.start_crawler(Name=name)


def test_expressions_locations_and_columns_glue_cannot_take_are_invalid_input(settings, glue, database, unique):
    athena = client(settings, "athena")
    with pytest.raises(glue.exceptions.InvalidInputException, match=r"Expression '\[' is not a regular expression"):
        glue.get_tables(DatabaseName=database, Expression="[")
    with pytest.raises(athena.exceptions.InvalidRequestException, match="is not a regular expression"):
        athena.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=database, Expression="[")
    with pytest.raises(glue.exceptions.InvalidInputException, match="Invalid location URI: not a uri"):
        glue.create_database(DatabaseInput={"Name": f"{database}_elsewhere", "LocationUri": "not a uri"})
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_database(Name=f"{database}_elsewhere")
    descriptor = {**PARQUET, "Location": "nowhere", "Columns": [{"Name": "a", "Type": "int"}]}
    with pytest.raises(glue.exceptions.InvalidInputException, match="not a valid file system URI: nowhere"):
        glue.create_table(DatabaseName=database, TableInput={"Name": "t", "StorageDescriptor": descriptor})
    descriptor = {**PARQUET, "Location": f"s3://{BUCKET}/test-aws/glue-{unique}/t/",
                  "Columns": [{"Name": "a", "Type": "int"}, {"Name": "a", "Type": "string"}]}
    with pytest.raises(glue.exceptions.InvalidInputException, match="specified more than once"):
        glue.create_table(DatabaseName=database, TableInput={"Name": "t", "StorageDescriptor": descriptor})
    assert glue.get_tables(DatabaseName=database)["TableList"] == []
