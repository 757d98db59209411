"""Kinesis Data Streams over Kafka, as course code sees it: the real boto3 and AWS CLI against the
running endpoint; the records are the Kafka records the stack's consumers read."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.exceptions import ClientError
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from aws.kinesis.kafka import MAX_MESSAGE_BYTES, Kafka
from aws.kinesis.shards import ShardIterator
from lakelab.resources import resources
from services.kafka.client import get_bootstrap_server
from services.kafka.client import get_client as kafka_admin
from services.s3.client import get_client as s3_client
from tests.aws.awskit import admin_keys, aws_cli, client, user_keys, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]

# What Kinesis answers for a new 3-shard stream
THREE_SHARD_RANGES = [
    ("0", "113427455640312821154458202477256070484"),
    ("113427455640312821154458202477256070485", "226854911280625642308916404954512140969"),
    ("226854911280625642308916404954512140970", "340282366920938463463374607431768211455"),
]


@pytest.fixture
def kinesis(settings):
    return client(settings, "kinesis")


@pytest.fixture
def new_stream(kinesis, unique):
    """new_stream(shards) -> the name of a fresh stream (on-demand if shards is None), deleted after the test."""
    made = []

    def make(shards: int | None = 3) -> str:
        name = f"test-aws-{unique}-{len(made)}"
        if shards is None:
            kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
        else:
            kinesis.create_stream(StreamName=name, ShardCount=shards)
        kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 40})
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            kinesis.delete_stream(StreamName=name)
        except ClientError:
            pass


def read_shard(kinesis, stream: str, shard: str, kind: str = "TRIM_HORIZON", **position) -> list[dict]:
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType=kind,
                                          **position)["ShardIterator"]
    return kinesis.get_records(ShardIterator=iterator)["Records"]


def shard_of(key: str, shards: list[dict]) -> str:
    """The shard whose range holds the MD5 of `key`, computed here independently of the settings."""
    hashed = int(hashlib.md5(key.encode()).hexdigest(), 16)
    return next(s["ShardId"] for s in shards
                if int(s["HashKeyRange"]["StartingHashKey"]) <= hashed <= int(s["HashKeyRange"]["EndingHashKey"]))


# -- streams ------------------------------------------------------------------------------------


def test_create_describe_list_and_delete_a_stream(kinesis, new_stream):
    name = new_stream(3)
    description = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    assert description["StreamStatus"] == "ACTIVE"
    assert description["StreamARN"] == f"arn:aws:kinesis:us-east-1:000000000000:stream/{name}"
    assert description["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert [s["ShardId"] for s in description["Shards"]] == [f"shardId-00000000000{i}" for i in range(3)]
    assert [(s["HashKeyRange"]["StartingHashKey"], s["HashKeyRange"]["EndingHashKey"])
            for s in description["Shards"]] == THREE_SHARD_RANGES
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"] == 3

    listed = [n for page in kinesis.get_paginator("list_streams").paginate(PaginationConfig={"PageSize": 2})
              for n in page["StreamNames"]]
    assert name in listed and listed == sorted(listed)
    first = kinesis.list_shards(StreamName=name, MaxResults=2)
    rest = kinesis.list_shards(NextToken=first["NextToken"])
    assert [s["ShardId"] for s in first["Shards"] + rest["Shards"]] == [s["ShardId"] for s in description["Shards"]]

    with pytest.raises(kinesis.exceptions.ResourceInUseException):
        kinesis.create_stream(StreamName=name, ShardCount=1)
    kinesis.delete_stream(StreamName=name)
    kinesis.get_waiter("stream_not_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 40})
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException,
                       match=f"Stream {name} under account 000000000000 not found."):
        kinesis.describe_stream(StreamName=name)


def test_a_stream_made_again_with_more_shards_takes_records_on_its_new_shards_at_once(kinesis, new_stream):
    """As a lab reset does: the endpoint's view of the streams follows a delete and a create at once."""
    name = new_stream(1)
    upper_half = str(2**127)
    assert kinesis.put_record(StreamName=name, Data=b"first", PartitionKey="k",
                              ExplicitHashKey=upper_half)["ShardId"] == "shardId-000000000000"
    kinesis.delete_stream(StreamName=name)
    kinesis.get_waiter("stream_not_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 40})
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException):
        kinesis.put_record(StreamName=name, Data=b"to nowhere", PartitionKey="k")
    kinesis.create_stream(StreamName=name, ShardCount=2)
    answer = kinesis.put_record(StreamName=name, Data=b"second", PartitionKey="k", ExplicitHashKey=upper_half)
    assert answer["ShardId"] == "shardId-000000000001"
    assert [r["Data"] for r in read_shard(kinesis, name, "shardId-000000000001")] == [b"second"]
    assert read_shard(kinesis, name, "shardId-000000000000") == []


def test_an_on_demand_stream_gets_four_shards(kinesis, new_stream):
    name = new_stream(None)
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert (summary["OpenShardCount"], summary["StreamModeDetails"]["StreamMode"]) == (4, "ON_DEMAND")


def test_the_stack_topics_are_streams(kinesis):
    declared = {t.name: t.partitions for t in resources().topics}
    assert {"stockdata", "iot-events"} <= set(kinesis.list_streams(Limit=10000)["StreamNames"])
    shards = kinesis.list_shards(StreamName="iot-events")["Shards"]
    assert len(shards) == declared["iot-events"]


# -- records ------------------------------------------------------------------------------------


def test_records_go_to_the_shard_of_their_key_hash_in_order(kinesis, new_stream):
    name = new_stream(3)
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    sent: dict[str, list[tuple[bytes, str]]] = {}
    for i in range(24):
        key = f"device-{i % 8}"
        put = kinesis.put_record(StreamName=name, Data=f"event-{i}".encode(), PartitionKey=key)
        assert put["ShardId"] == shard_of(key, shards)
        sent.setdefault(put["ShardId"], []).append((f"event-{i}".encode(), put["SequenceNumber"]))
    assert len(sent) > 1, "eight keys should spread over more than one of three shards"
    for shard, expected in sent.items():
        records = read_shard(kinesis, name, shard)
        assert [(r["Data"], r["SequenceNumber"]) for r in records] == expected
        numbers = [int(r["SequenceNumber"]) for r in records]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)

    last = kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="any", ExplicitHashKey=THREE_SHARD_RANGES[2][0])
    assert last["ShardId"] == "shardId-000000000002"
    batch = kinesis.put_records(StreamName=name, Records=[
        {"Data": b"a", "PartitionKey": "p", "ExplicitHashKey": THREE_SHARD_RANGES[0][1]},
        {"Data": b"b", "PartitionKey": "p", "ExplicitHashKey": THREE_SHARD_RANGES[1][0]}])
    assert batch["FailedRecordCount"] == 0
    assert [r["ShardId"] for r in batch["Records"]] == ["shardId-000000000000", "shardId-000000000001"]


def test_put_records_answers_each_record_with_its_own_shard_and_sequence_number(kinesis, new_stream):
    """Records of one call are sent to Kafka a shard at a time: each answer must still be its own record's."""
    name = new_stream(3)
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    entries = [{"Data": f"event-{i}".encode(), "PartitionKey": f"device-{i % 12}"} for i in range(60)]
    answer = kinesis.put_records(StreamName=name, Records=entries)
    assert answer["FailedRecordCount"] == 0
    sent: dict[str, list[tuple[bytes, str]]] = {}
    for entry, record in zip(entries, answer["Records"], strict=True):
        assert record["ShardId"] == shard_of(entry["PartitionKey"], shards)
        sent.setdefault(record["ShardId"], []).append((entry["Data"], record["SequenceNumber"]))
    assert len(sent) == 3
    for shard, expected in sent.items():
        assert [(r["Data"], r["SequenceNumber"]) for r in read_shard(kinesis, name, shard)] == expected


def test_a_batch_refused_in_part_before_sending_answers_each_record(settings, unique):
    """What PutRecords and Firehose's PutRecordBatch build on: records Kafka's producer refuses when
    they are queued (too large for it, a partition the topic lacks) get their own refusal, and the
    others of the same partitions are delivered, in order, with their own offsets."""
    kafka = Kafka(get_bootstrap_server(settings))
    name = f"test-aws-batch-{unique}"
    try:
        kafka.create_topic(name, 2, {})
        too_large = b"x" * (MAX_MESSAGE_BYTES + 1)
        records = [(0, b"a", b"first"), (1, b"b", b"second"), (0, b"c", too_large), (5, b"d", b"nowhere"),
                   (1, None, b"third"), (0, b"e", b"fourth")]
        outcomes = kafka.produce_all(name, records, 15)
        refused = {i: o.args[0].code() for i, o in enumerate(outcomes) if isinstance(o, KafkaException)}
        assert refused == {2: KafkaError.MSG_SIZE_TOO_LARGE, 3: KafkaError._UNKNOWN_PARTITION}
        delivered = {i: (o.partition(), o.offset(), o.value()) for i, o in enumerate(outcomes) if i not in refused}
        assert delivered == {0: (0, 0, b"first"), 1: (1, 0, b"second"), 4: (1, 1, b"third"), 5: (0, 1, b"fourth")}
        assert kafka.produce_all(name, [], 15) == []
    finally:
        kafka.delete_topic(name)
        kafka.close()


def test_every_iterator_type(kinesis, new_stream):
    name = new_stream(1)
    shard = "shardId-000000000000"
    latest = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    first = [kinesis.put_record(StreamName=name, Data=d, PartitionKey="k")["SequenceNumber"] for d in (b"r1", b"r2")]
    time.sleep(1.0)
    between = datetime.now(timezone.utc) - timedelta(milliseconds=500)
    third = kinesis.put_record(StreamName=name, Data=b"r3", PartitionKey="k")["SequenceNumber"]
    data = lambda records: [r["Data"] for r in records]  # noqa: E731

    assert data(read_shard(kinesis, name, shard)) == [b"r1", b"r2", b"r3"]
    assert data(kinesis.get_records(ShardIterator=latest)["Records"]) == [b"r1", b"r2", b"r3"]
    assert data(read_shard(kinesis, name, shard, "LATEST")) == []
    assert data(read_shard(kinesis, name, shard, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=first[1])) == \
        [b"r2", b"r3"]
    assert data(read_shard(kinesis, name, shard, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=first[1])) == [b"r3"]
    assert data(read_shard(kinesis, name, shard, "AT_TIMESTAMP", Timestamp=between)) == [b"r3"]
    assert data(read_shard(kinesis, name, shard, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=third)) == []

    iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    seen, behind = [], []
    for _ in range(4):
        page = kinesis.get_records(ShardIterator=iterator, Limit=1)
        seen += data(page["Records"])
        behind.append(page["MillisBehindLatest"])
        iterator = page["NextShardIterator"]
    assert seen == [b"r1", b"r2", b"r3"]
    assert behind[0] > 0 and behind[2:] == [0, 0]
    kinesis.put_record(StreamName=name, Data=b"r4", PartitionKey="k")
    assert data(kinesis.get_records(ShardIterator=iterator)["Records"]) == [b"r4"]


def test_put_records_reports_failures_per_record(settings, kinesis, unique):
    """A topic that accepts only small messages: the big record fails, the others land."""
    name = f"test-aws-small-{unique}"
    config = {"max.message.bytes": "2048"}
    kafka = kafka_admin(settings)  # kept: its futures fail if it is collected first
    for future in kafka.create_topics([NewTopic(name, 2, 1, config=config)]).values():
        future.result()
    try:
        # a topic made with Kafka's admin API shows in the broker's metadata a moment later
        wait_for("the topic as a stream", lambda: name in kinesis.list_streams(Limit=10000)["StreamNames"])
        result = kinesis.put_records(StreamName=name, Records=[
            {"Data": b"small", "PartitionKey": "a", "ExplicitHashKey": "0"},
            {"Data": b"x" * 10_000, "PartitionKey": "b", "ExplicitHashKey": str(2**127)},
            {"Data": b"small too", "PartitionKey": "c", "ExplicitHashKey": "1"}])
        assert result["FailedRecordCount"] == 1
        ok, failed, ok_too = result["Records"]
        assert ok["ShardId"] == ok_too["ShardId"] == "shardId-000000000000" and "ErrorCode" not in ok
        assert failed["ErrorCode"] == "InternalFailure" and "too large" in failed["ErrorMessage"]
        assert "SequenceNumber" not in failed
        records = read_shard(kinesis, name, "shardId-000000000000")
        assert [r["SequenceNumber"] for r in records] == [ok["SequenceNumber"], ok_too["SequenceNumber"]]
        assert read_shard(kinesis, name, "shardId-000000000001") == []
    finally:
        kinesis.delete_stream(StreamName=name)


def test_a_record_put_through_the_api_is_the_same_kafka_record(settings, kinesis, new_stream, unique):
    name = new_stream(2)
    data, key = bytes(range(256)) + "ünïcode".encode(), "device-ü"
    put = kinesis.put_record(StreamName=name, Data=data, PartitionKey=key)
    partition = int(put["ShardId"].removeprefix("shardId-"))
    consumer = Consumer({"bootstrap.servers": get_bootstrap_server(settings), "group.id": f"test-aws-{unique}",
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(name, partition, 0)])
        message = consumer.poll(10)
    finally:
        consumer.close()
    assert message is not None and message.error() is None
    assert (message.value(), message.key()) == (data, key.encode())
    [record] = read_shard(kinesis, name, put["ShardId"])
    assert record["ApproximateArrivalTimestamp"].timestamp() == message.timestamp()[1] / 1000

    producer = Producer({"bootstrap.servers": get_bootstrap_server(settings)})
    producer.produce(name, value=b'{"from": "kafka"}', key=b"plain", partition=partition)
    assert producer.flush(10) == 0
    records = read_shard(kinesis, name, put["ShardId"])
    assert (records[-1]["Data"], records[-1]["PartitionKey"]) == (b'{"from": "kafka"}', "plain")


# -- errors -------------------------------------------------------------------------------------


def test_errors_are_the_ones_aws_answers(settings, kinesis, new_stream):
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException, match="Stream nowhere under account"):
        kinesis.put_record(StreamName="nowhere", Data=b"x", PartitionKey="k")
    name = new_stream(2)
    with pytest.raises(kinesis.exceptions.ValidationException, match="Value at 'data' failed to satisfy constraint: "
                                                                     "Member must have length less than or equal to "
                                                                     "1048576"):
        kinesis.put_record(StreamName=name, Data=b"x" * (1024 * 1024 + 1), PartitionKey="k")
    kinesis.put_record(StreamName=name, Data=b"x" * (1024 * 1024), PartitionKey="k")  # the largest record fits

    with pytest.raises(kinesis.exceptions.InvalidArgumentException, match="Invalid ShardIterator."):
        kinesis.get_records(ShardIterator="AAAAAAAAAAAAAAAAbm90IGFuIGl0ZXJhdG9y")
    old = ShardIterator(name, 0, 0, int(time.time() * 1000) - 301_000).encode()
    with pytest.raises(kinesis.exceptions.ExpiredIteratorException, match="Iterator expired"):
        kinesis.get_records(ShardIterator=old)
    other_shard = kinesis.put_record(StreamName=name, Data=b"y", PartitionKey="k", ExplicitHashKey=str(2**127))
    with pytest.raises(kinesis.exceptions.InvalidArgumentException, match="It encodes shardId-000000000001"):
        kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                   ShardIteratorType="AT_SEQUENCE_NUMBER",
                                   StartingSequenceNumber=other_shard["SequenceNumber"])
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException, match="shardId-000000000009"):
        kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-000000000009", ShardIteratorType="LATEST")


def test_wrong_signatures_unknown_keys_and_other_users_are_refused(settings):
    access, _ = admin_keys(settings)
    cases = [((access, "not-the-secret"), "InvalidSignatureException"),
             (("AKIANOSUCHKEY", "whatever"), "UnrecognizedClientException"),
             (user_keys("analyst"), "AccessDeniedException")]
    for keys, code in cases:
        with pytest.raises(ClientError) as refused:
            client(settings, "kinesis", keys).list_streams()
        assert refused.value.response["Error"]["Code"] == code
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as refused:
        client(settings, "sts", (access, "not-the-secret")).get_caller_identity()
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


# -- STS and unchanged code ---------------------------------------------------------------------


def test_sts_caller_identity_for_admin_and_analyst_with_aws_endpoint_url(settings, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", settings.aws_endpoint_url)
    for name, (access, secret) in [("admin", admin_keys(settings)), ("analyst", user_keys("analyst"))]:
        sts = boto3.Session(aws_access_key_id=access, aws_secret_access_key=secret,
                            region_name="us-east-1").client("sts")  # no endpoint_url: as unchanged code
        identity = sts.get_caller_identity()
        assert (identity["Account"], identity["Arn"], identity["UserId"]) == \
            ("000000000000", f"arn:aws:iam::000000000000:user/{name}", access)


def test_the_aws_cli_drives_kinesis_and_sts(settings, new_stream):
    name = new_stream(2)
    summary = json.loads(aws_cli(settings, "kinesis", "describe-stream-summary", "--stream-name", name).stdout)
    assert summary["StreamDescriptionSummary"]["OpenShardCount"] == 2
    put = json.loads(aws_cli(settings, "kinesis", "put-record", "--stream-name", name, "--partition-key", "cli",
                             "--data", "from the cli").stdout)
    iterator = json.loads(aws_cli(settings, "kinesis", "get-shard-iterator", "--stream-name", name, "--shard-id",
                                  put["ShardId"], "--shard-iterator-type", "AT_SEQUENCE_NUMBER",
                                  "--starting-sequence-number", put["SequenceNumber"]).stdout)["ShardIterator"]
    records = json.loads(aws_cli(settings, "kinesis", "get-records", "--shard-iterator", iterator).stdout)["Records"]
    assert [(r["Data"], r["PartitionKey"]) for r in records] == [("ZnJvbSB0aGUgY2xp", "cli")]  # base64 in JSON

    missing = aws_cli(settings, "kinesis", "describe-stream", "--stream-name", f"{name}-missing")
    assert missing.returncode != 0 and "(ResourceNotFoundException)" in missing.stderr
    analyst = json.loads(aws_cli(settings, "sts", "get-caller-identity", keys=user_keys("analyst")).stdout)
    assert analyst["Arn"] == "arn:aws:iam::000000000000:user/analyst"
    wrong = aws_cli(settings, "sts", "get-caller-identity", keys=(settings.s3_access_key, "wrong"))
    assert wrong.returncode != 0 and "(SignatureDoesNotMatch)" in wrong.stderr


def test_s3_through_the_endpoint_is_the_lake_s3(settings, unique):
    key = f"test-aws/{unique}/a b+ü.csv"
    via_endpoint = client(settings, "s3", s3={"addressing_style": "path"})
    via_endpoint.put_object(Bucket="raw", Key=key, Body=b"id,amount\n1,2\n")
    direct = s3_client(settings)
    assert direct.get_object(Bucket="raw", Key=key)["Body"].read() == b"id,amount\n1,2\n"
    with pytest.raises(ClientError) as denied:  # the analyst only reads `processed`: S3 itself says no
        client(settings, "s3", user_keys("analyst")).put_object(Bucket="raw", Key=key, Body=b"x")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    via_endpoint.delete_object(Bucket="raw", Key=key)
