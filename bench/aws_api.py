"""The AWS endpoint against the engines behind it, in the same run, interleaved:

- PutRecords records/s through the endpoint (boto3, 500-record batches of trade JSON) against the
  same records produced to Kafka directly (confluent-kafka, same keys and partitions, each batch
  waited for as PutRecords waits for its acknowledgements);
- GetRecords records/s through the endpoint (boto3, shard iterators) against a Kafka consumer
  reading the same partitions;
- Athena's StartQueryExecution-to-SUCCEEDED time against the same SQL on Trino directly (the
  project's Trino client), and the difference: the endpoint's overhead per query.

    .venv/bin/python bench/aws_api.py [--rounds 5] [--batches 10] [--queries 20]

Needs the stack up with the endpoint (`lakelab up`). Loopback only; bounded in count. Every figure
is printed with the load average and the core count beside it, since the machine may be shared.
Targets: PutRecords at least 50% of direct produce; Athena overhead under 50 ms per query.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import boto3
from botocore.stub import Stubber
from confluent_kafka import Consumer, Producer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from percentiles import percentile  # noqa: E402

from aws.kinesis.shards import partition_key_hash, shard_for_hash  # noqa: E402
from lakelab.settings import get_settings  # noqa: E402
from services.aws.client import get_client  # noqa: E402
from services.kafka.client import get_bootstrap_server  # noqa: E402
from services.trino.client import get_client as trino_connection  # noqa: E402

BATCH = 500
SHARDS = 3
SYMBOLS = ("BTC_USD", "ETH_USD", "LTC_USD")
ATHENA_SQL = "SELECT count(*) AS n, sum(x) AS s FROM UNNEST(sequence(1, 1000)) AS t(x)"


def machine() -> str:
    one, five, _ = os.getloadavg()
    return f"[load {one:.2f}/{five:.2f}, {os.cpu_count()} cores]"


def trades(count: int) -> list[tuple[str, bytes]]:
    """(partition key, JSON line) of `count` trades in the lab's shape (about 150 bytes each)."""
    return [(SYMBOLS[i % 3], (json.dumps({"transaction_ts": 1601510400 + i, "symbol": SYMBOLS[i % 3],
                                          "price": 10792.34 + i % 100, "amount": 0.13389387,
                                          "dollar_amount": 1416.992132, "type": ("buy", "sell")[i % 2],
                                          "trans_id": 124289114 + i}) + "\n").encode()) for i in range(count)]


def put_through_endpoint(kinesis, stream: str, batch: list[tuple[str, bytes]]) -> None:
    answer = kinesis.put_records(StreamName=stream, Records=[{"Data": data, "PartitionKey": key}
                                                             for key, data in batch])
    assert answer["FailedRecordCount"] == 0, answer["Records"][:3]


def produce_directly(producer: Producer, topic: str, batch: list[tuple[str, bytes]]) -> None:
    for key, data in batch:
        producer.produce(topic, value=data, key=key.encode(),
                         partition=shard_for_hash(partition_key_hash(key), SHARDS))
    assert producer.flush(30) == 0


def boto3_ceiling(records: list[tuple[str, bytes]], batches: int) -> float:
    """Records/s boto3 itself allows (validating, serializing, signing a PutRecords and parsing its
    answer), with botocore's Stubber in place of any server: the most an HTTP endpoint can give."""
    kinesis = boto3.client("kinesis", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    answer = {"FailedRecordCount": 1, "Records": [{"ShardId": "shardId-000000000000", "SequenceNumber": "49" + "0" * 30}
                                                  for _ in records]}
    with Stubber(kinesis) as stub:
        for _ in range(batches):
            stub.add_response("put_records", answer)
        began = time.perf_counter()
        for _ in range(batches):
            kinesis.put_records(StreamName="s", Records=[{"Data": data, "PartitionKey": key} for key, data in records])
    return batches * len(records) / (time.perf_counter() - began)


def bench_puts(kinesis, producer: Producer, stream: str, topic: str, rounds: int, batches: int) -> None:
    records = trades(BATCH)
    rates: dict[str, list[float]] = {"endpoint": [], "kafka": []}
    for round_number in range(rounds):
        for way in ("endpoint", "kafka") if round_number % 2 == 0 else ("kafka", "endpoint"):
            began = time.perf_counter()
            for _ in range(batches):
                if way == "endpoint":
                    put_through_endpoint(kinesis, stream, records)
                else:
                    produce_directly(producer, topic, records)
            rates[way].append(batches * BATCH / (time.perf_counter() - began))
            print(f"  round {round_number + 1} {way:8} {rates[way][-1]:9.0f} records/s  {machine()}")
    endpoint, kafka = statistics.median(rates["endpoint"]), statistics.median(rates["kafka"])
    print(f"PutRecords, {BATCH}-record batches: endpoint {endpoint:.0f} records/s, Kafka produce {kafka:.0f} "
          f"records/s (medians of {rounds}); ratio {endpoint / kafka:.0%} (target >= 50%)  {machine()}")
    ceiling = boto3_ceiling(records, batches)
    print(f"  boto3's own work alone allows {ceiling:.0f} records/s, {ceiling / kafka:.0%} of Kafka produce  "
          f"{machine()}")


def read_through_endpoint(kinesis, stream: str) -> int:
    count = 0
    for shard in range(SHARDS):
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=f"shardId-{shard:012d}",
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while True:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            count += len(page["Records"])
            iterator = page["NextShardIterator"]
            if not page["Records"] and page["MillisBehindLatest"] == 0:
                break
    return count


def read_directly(consumer: Consumer, topic: str) -> int:
    """Every record of the topic's partitions, read with a consumer connected beforehand (as the
    endpoint's pooled consumers are)."""
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(SHARDS)}
    consumer.assign([TopicPartition(topic, p, 0) for p in range(SHARDS)])
    count, positions = 0, dict.fromkeys(ends, 0)
    while any(positions[p] < ends[p] for p in ends):
        for message in consumer.consume(500, timeout=0.1):
            count += 1
            positions[message.partition()] = message.offset() + 1
    consumer.unassign()
    return count


def bench_gets(settings, kinesis, stream: str, topic: str, rounds: int) -> None:
    rates: dict[str, list[float]] = {"endpoint": [], "kafka": []}
    consumer = Consumer({"bootstrap.servers": get_bootstrap_server(settings), "group.id": f"bench-{uuid.uuid4()}",
                         "enable.auto.commit": False})
    consumer.list_topics(topic, timeout=10)
    for round_number in range(rounds):
        for way in ("endpoint", "kafka") if round_number % 2 == 0 else ("kafka", "endpoint"):
            began = time.perf_counter()
            count = read_through_endpoint(kinesis, stream) if way == "endpoint" else read_directly(consumer, topic)
            rates[way].append(count / (time.perf_counter() - began))
            print(f"  round {round_number + 1} {way:8} {rates[way][-1]:9.0f} records/s ({count} records)  "
                  f"{machine()}")
    consumer.close()
    endpoint, kafka = statistics.median(rates["endpoint"]), statistics.median(rates["kafka"])
    print(f"GetRecords: endpoint {endpoint:.0f} records/s, Kafka consumer {kafka:.0f} records/s (medians of "
          f"{rounds}); ratio {endpoint / kafka:.0%}  {machine()}")


def athena_query(athena, output: str) -> float:
    began = time.perf_counter()
    query_id = athena.start_query_execution(QueryString=ATHENA_SQL,
                                            ResultConfiguration={"OutputLocation": output})["QueryExecutionId"]
    while True:
        state = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"]
        if state == "SUCCEEDED":
            return time.perf_counter() - began
        assert state in ("QUEUED", "RUNNING"), state
        time.sleep(0.002)


def trino_query(settings) -> float:
    began = time.perf_counter()
    cursor = trino_connection(settings, "hive", "default", timezone="UTC", legacy_primitive_types=True).cursor()
    cursor.execute(ATHENA_SQL)
    cursor.fetchall()
    return time.perf_counter() - began


def bench_athena(settings, athena, output: str, queries: int) -> None:
    athena_query(athena, output), trino_query(settings)  # warm both paths
    through, direct = [], []
    for i in range(queries):
        for way in ("athena", "trino") if i % 2 == 0 else ("trino", "athena"):
            (through if way == "athena" else direct).append(
                athena_query(athena, output) if way == "athena" else trino_query(settings))
    overheads = [a - t for a, t in zip(through, direct)]
    print(f"Athena StartQueryExecution->SUCCEEDED: median {statistics.median(through) * 1000:.0f} ms "
          f"(p90 {percentile(through, 0.9) * 1000:.0f}); Trino directly: median {statistics.median(direct) * 1000:.0f}"
          f" ms (p90 {percentile(direct, 0.9) * 1000:.0f}); overhead per query: median "
          f"{statistics.median(overheads) * 1000:.0f} ms (target < 50 ms), {queries} pairs  {machine()}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=10, help="PutRecords batches per round and way")
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()
    settings = get_settings()
    kinesis, athena, s3 = (get_client(settings, s, retries={"max_attempts": 1}) for s in ("kinesis", "athena", "s3"))
    suffix = uuid.uuid4().hex[:8]
    stream, topic = f"bench-aws-endpoint-{suffix}", f"bench-aws-direct-{suffix}"
    output_prefix = f"bench-aws-{suffix}/"
    for name in (stream, topic):
        kinesis.create_stream(StreamName=name, ShardCount=SHARDS)
    producer = Producer({"bootstrap.servers": get_bootstrap_server(settings), "enable.idempotence": True,
                         "linger.ms": 1})
    print(f"AWS endpoint at {settings.aws_endpoint_url}, Kafka at {get_bootstrap_server(settings)}  {machine()}")
    try:
        bench_puts(kinesis, producer, stream, topic, args.rounds, args.batches)
        bench_gets(settings, kinesis, stream, topic, max(1, args.rounds // 2))
        bench_athena(settings, athena, f"s3://datalake/{output_prefix}", args.queries)
    finally:
        for name in (stream, topic):
            kinesis.delete_stream(StreamName=name)
        listed = s3.list_objects_v2(Bucket="datalake", Prefix=output_prefix).get("Contents", [])
        for item in listed:
            s3.delete_object(Bucket="datalake", Key=item["Key"])


if __name__ == "__main__":
    main()
