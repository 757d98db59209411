"""Kinesis Data Firehose through the endpoint, with the real boto3: delivery streams as the trades
lab declares them, records reaching S3 under the prefix of their arrival hour, errors as AWS words
them."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from services.kafka.client import get_client as kafka_admin
from services.s3.client import delete_prefix
from services.s3.client import get_client as s3_client
from tests.aws.awskit import client, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]

BUCKET = "datalake"
HOUR_FOLDERS = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
ROLE = "arn:aws:iam::000000000000:role/firehose-role-dev"


@pytest.fixture
def firehose(settings):
    return client(settings, "firehose")


@pytest.fixture
def place(settings, unique):
    """A fresh prefix of the lake's bucket for the test's objects, emptied afterwards."""
    prefix = f"test-aws/firehose-{unique}/"
    yield prefix
    delete_prefix(settings, f"s3://{BUCKET}/{prefix}")


@pytest.fixture
def delivery_streams(firehose):
    made: list[str] = []
    yield made
    for name in made:
        try:
            firehose.delete_delivery_stream(DeliveryStreamName=name)
        except ClientError:
            pass


def s3_destination(prefix: str, interval: int = 1) -> dict:
    """The trades lab's extended_s3_configuration, with the test's prefix and interval."""
    return {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{BUCKET}", "Prefix": f"{prefix}stockdata/{HOUR_FOLDERS}",
            "ErrorOutputPrefix": f"{prefix}stockdata_errors/!{{firehose:error-output-type}}/{HOUR_FOLDERS}",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": interval}}


def objects(settings, prefix: str) -> dict[str, bytes]:
    s3 = s3_client(settings)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed
            if not o["Key"].endswith("/")}


def hour_folder(moment: datetime) -> str:
    return f"year={moment:%Y}/month={moment:%m}/day={moment:%d}/hour={moment:%H}/"


def test_a_delivery_stream_as_the_trades_lab_declares_it(settings, firehose, delivery_streams, place, unique):
    kinesis = client(settings, "kinesis")
    stream = f"test-aws-cryptostock-{unique}"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    try:
        stream_arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
        name = f"test-aws-firehose-{unique}"
        destination = s3_destination(place, interval=60)
        created = firehose.create_delivery_stream(
            DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
            KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn, "RoleARN": ROLE},
            ExtendedS3DestinationConfiguration=destination)
        delivery_streams.append(name)
        assert created["DeliveryStreamARN"] == f"arn:aws:firehose:us-east-1:000000000000:deliverystream/{name}"

        description = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        assert (description["DeliveryStreamStatus"], description["DeliveryStreamType"]) == \
            ("ACTIVE", "KinesisStreamAsSource")
        assert description["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"] == stream_arn
        s3 = description["Destinations"][0]["ExtendedS3DestinationDescription"]
        assert (s3["Prefix"], s3["ErrorOutputPrefix"], s3["BufferingHints"]) == \
            (destination["Prefix"], destination["ErrorOutputPrefix"], {"SizeInMBs": 1, "IntervalInSeconds": 60})
        assert name in firehose.list_delivery_streams(Limit=10000)["DeliveryStreamNames"]

        with pytest.raises(firehose.exceptions.InvalidArgumentException, match="KinesisStreamAsSource"):
            firehose.put_record(DeliveryStreamName=name, Record={"Data": b"{}"})
        with pytest.raises(firehose.exceptions.ResourceInUseException):
            firehose.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=destination)
        firehose.delete_delivery_stream(DeliveryStreamName=name)
        with pytest.raises(firehose.exceptions.ResourceNotFoundException,
                           match=f"Firehose {name} under account 000000000000 not found."):
            firehose.describe_delivery_stream(DeliveryStreamName=name)
    finally:
        kinesis.delete_stream(StreamName=stream)


def test_direct_put_records_land_under_their_arrival_hour_and_bad_ones_under_errors(
        settings, firehose, delivery_streams, place, unique):
    name = f"test-aws-direct-{unique}"
    firehose.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=s3_destination(place))
    delivery_streams.append(name)
    trades = [{"symbol": "BTC_USD", "price": 10792.34 + i, "trans_id": i} for i in range(5)]
    before = datetime.now(timezone.utc)
    firehose.put_record(DeliveryStreamName=name, Record={"Data": json.dumps(trades[0]).encode() + b"\n"})
    batch = firehose.put_record_batch(DeliveryStreamName=name, Records=[
        *({"Data": json.dumps(t).encode() + b"\n"} for t in trades[1:]), {"Data": b"not json\n"}])
    assert batch["FailedPutCount"] == 0 and all("RecordId" in r for r in batch["RequestResponses"])

    delivered = wait_for("the records in S3", lambda: (found := objects(settings, place)) and len(found) >= 2 and found)
    data = {k: v for k, v in delivered.items() if "/stockdata/" in k}
    errors = {k: v for k, v in delivered.items() if "/stockdata_errors/" in k}
    hours = {hour_folder(before), hour_folder(datetime.now(timezone.utc))}
    assert all(any(k.startswith(f"{place}stockdata/{h}") for h in hours) for k in data), sorted(data)
    assert [json.loads(line) for body in data.values() for line in body.splitlines()] == trades
    [(key, body)] = errors.items()
    assert key.startswith(f"{place}stockdata_errors/not-json/year=")
    assert json.loads(body)["errorCode"] == "not-json"


def test_a_kinesis_source_delivers_the_records_put_after_it_was_created(settings, firehose, delivery_streams, place,
                                                                       unique):
    kinesis = client(settings, "kinesis")
    stream = f"test-aws-source-{unique}"
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    try:
        kinesis.put_record(StreamName=stream, Data=b'{"before": true}', PartitionKey="k")  # as on AWS: not delivered
        arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
        name = f"test-aws-source-{unique}"
        firehose.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
                                        KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": ROLE},
                                        ExtendedS3DestinationConfiguration=s3_destination(place))
        delivery_streams.append(name)
        records = [{"trans_id": i} for i in range(20)]
        kinesis.put_records(StreamName=stream, Records=[{"Data": json.dumps(r).encode(), "PartitionKey": str(i)}
                                                        for i, r in enumerate(records)])
        delivered = wait_for("20 records in S3", lambda: (lines := [json.loads(line) for body in objects(
            settings, f"{place}stockdata/").values() for line in body.splitlines()]) and len(lines) >= 20 and lines)
        assert sorted(delivered, key=lambda r: r["trans_id"]) == records
    finally:
        kinesis.delete_stream(StreamName=stream)


def test_bad_input_gets_the_error_aws_answers(settings, firehose, delivery_streams, place, unique):
    with pytest.raises(firehose.exceptions.ResourceNotFoundException, match="Firehose nowhere under account"):
        firehose.put_record(DeliveryStreamName="nowhere", Record={"Data": b"{}"})
    with pytest.raises(ClientError) as refused:
        firehose.create_delivery_stream(DeliveryStreamName=f"test-aws-bad-{unique}", ExtendedS3DestinationConfiguration={
            **s3_destination(place), "ErrorOutputPrefix": ""})
    assert refused.value.response["Error"]["Code"] == "InvalidArgumentException"
    assert "ErrorOutputPrefix cannot be null or empty" in refused.value.response["Error"]["Message"]
    with pytest.raises(firehose.exceptions.InvalidArgumentException, match="bucket no-such-bucket"):
        firehose.create_delivery_stream(DeliveryStreamName=f"test-aws-bad-{unique}", ExtendedS3DestinationConfiguration={
            **s3_destination(place), "BucketARN": "arn:aws:s3:::no-such-bucket"})
    assert f"test-aws-bad-{unique}" not in firehose.list_delivery_streams(Limit=10000)["DeliveryStreamNames"]
    assert f"_firehose-test-aws-bad-{unique}" not in client(settings, "kinesis").list_streams()["StreamNames"]
    assert f"_firehose-test-aws-bad-{unique}" not in kafka_admin(settings).list_topics(timeout=10).topics, \
        "a refused delivery stream leaves no buffer topic behind"

    name = f"test-aws-limits-{unique}"
    firehose.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=s3_destination(place))
    delivery_streams.append(name)
    with pytest.raises(ClientError) as too_big:
        firehose.put_record(DeliveryStreamName=name, Record={"Data": b"x" * (1024 * 1000 + 1)})
    assert too_big.value.response["Error"]["Code"] == "ValidationException"
    assert "Member must have length less than or equal to 1024000" in too_big.value.response["Error"]["Message"]
