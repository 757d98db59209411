"""The AWS endpoint against the engines behind it, in the same run, interleaved:

- PutRecords records/s through the endpoint (boto3, 500-record batches of trade JSON) against the
  same records produced to Kafka directly (confluent-kafka, same keys and partitions, each batch
  waited for as PutRecords waits for its acknowledgements);
- PutRecord, one record per call as the trades lab's generator sends them, against one Kafka
  produce waited for per record;
- GetRecords records/s through the endpoint (boto3, shard iterators) against a Kafka consumer
  reading the same partitions;
- each of those three also through boto3 against an endpoint that answers at once with a fixed
  answer (`bench/instant_endpoint.py`): the most any endpoint can give a boto3 client here;
- Athena's StartQueryExecution-to-SUCCEEDED time against the same SQL on Trino directly (the
  project's Trino client), and the difference: the endpoint's overhead per query.

Needs the stack up with the endpoint (`lakelab up`). Loopback only; bounded in count. Targets:
PutRecords at least 50% of direct produce; Athena overhead under 50 ms per query.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
from confluent_kafka import Consumer, Producer, TopicPartition

from aws.kinesis.shards import partition_key_hash, shard_for_hash
from bench.cli import Bench
from bench.percentiles import percentile
from lakelab.resources import resources
from services.aws.client import get_client
from services.kafka.client import get_bootstrap_server
from services.trino.client import get_client as trino_connection

BATCH = 500
SHARDS = 3
SYMBOLS = ("BTC_USD", "ETH_USD", "LTC_USD")
GET_LIMIT = 10_000
INSTANT = "boto3 against an endpoint that answers at once (no Kafka, no checks): the most any endpoint can give"
ATHENA_SQL = "SELECT count(*) AS n, sum(x) AS s FROM UNNEST(sequence(1, 1000)) AS t(x)"


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


@contextmanager
def instant_kinesis(get_records: int, data_bytes: int) -> Iterator:
    """A boto3 Kinesis client of an endpoint, in a process of its own, that answers each record call
    at once (`bench/instant_endpoint.py`): PutRecords with BATCH records, GetRecords with
    `get_records` records of `data_bytes` bytes."""
    server = subprocess.Popen([sys.executable, "-m", "bench.instant_endpoint", "--put-records", str(BATCH),
                               "--get-records", str(get_records), "--data-bytes", str(data_bytes)],
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    try:
        port = server.stdout.readline().strip()
        if not port:
            raise RuntimeError(f"bench.instant_endpoint exited with {server.wait()} before it listened")
        yield boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                           aws_access_key_id="instant", aws_secret_access_key="instant")
    finally:
        server.kill()
        server.wait()


def turns(ways: list[str], rounds: int) -> Iterator[tuple[int, str]]:
    """(round, way) for every way in every round, the order turned by one each round."""
    for round_number in range(rounds):
        shift = round_number % len(ways)
        for way in ways[shift:] + ways[:shift]:
            yield round_number, way


def timed_rounds(bench: Bench, what: str, rounds: int, calls: int, ways: dict[str, Callable[[], None]]) \
        -> dict[str, float]:
    """Median seconds per call of each way, over `rounds` of `calls` calls."""
    seconds: dict[str, list[float]] = {way: [] for way in ways}
    for round_number, way in turns(list(ways), rounds):
        bench.step(f"{what} round {round_number + 1}/{rounds}: {way}")
        call = ways[way]
        began = time.perf_counter()
        for _ in range(calls):
            call()
        seconds[way].append((time.perf_counter() - began) / calls)
    return {way: statistics.median(values) for way, values in seconds.items()}


def bench_puts(bench: Bench, kinesis, instant, producer: Producer, stream: str, topic: str, rounds: int,
               batches: int) -> None:
    records = trades(BATCH)
    per_batch = timed_rounds(bench, "PutRecords", rounds, batches, {
        "endpoint": lambda: put_through_endpoint(kinesis, stream, records),
        "kafka": lambda: produce_directly(producer, topic, records),
        "instant endpoint": lambda: put_through_endpoint(instant, stream, records),
    })
    kafka = BATCH / per_batch["kafka"]
    bench.figure(f"PutRecords, {BATCH}-record batches, median of {rounds}", BATCH / per_batch["endpoint"], "records/s",
                 standard=kafka, standard_name="Kafka produce, same records", at_least=0.5)
    bench.figure(f"PutRecords, {INSTANT}", BATCH / per_batch["instant endpoint"], "records/s", standard=kafka,
                 standard_name="Kafka produce")


def bench_single_puts(bench: Bench, kinesis, instant, producer: Producer, stream: str, topic: str, rounds: int,
                      calls: int) -> None:
    [(key, data)] = trades(1)
    per_call = timed_rounds(bench, "PutRecord", rounds, calls, {
        "endpoint": lambda: kinesis.put_record(StreamName=stream, Data=data, PartitionKey=key),
        "kafka": lambda: produce_directly(producer, topic, [(key, data)]),
        "instant endpoint": lambda: instant.put_record(StreamName=stream, Data=data, PartitionKey=key),
    })
    bench.figure(f"PutRecord, one record per call, median of {rounds}", per_call["endpoint"] * 1000, "ms",
                 standard=per_call["kafka"] * 1000, standard_name="one Kafka produce waited for")
    bench.figure(f"PutRecord, {INSTANT}", per_call["instant endpoint"] * 1000, "ms",
                 standard=per_call["kafka"] * 1000, standard_name="one Kafka produce waited for")


def read_through_endpoint(kinesis, stream: str) -> int:
    count = 0
    for shard in range(SHARDS):
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=f"shardId-{shard:012d}",
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while True:
            page = kinesis.get_records(ShardIterator=iterator, Limit=GET_LIMIT)
            count += len(page["Records"])
            iterator = page["NextShardIterator"]
            if not page["Records"] and page["MillisBehindLatest"] == 0:
                break
    return count


def read_instantly(instant, count: int) -> int:
    """At least `count` records read from the instant endpoint, GET_LIMIT a call."""
    read = 0
    while read < count:
        read += len(instant.get_records(ShardIterator="instant", Limit=GET_LIMIT)["Records"])
    return read


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


def bench_gets(bench: Bench, settings, kinesis, instant, stream: str, topic: str, rounds: int) -> None:
    rates: dict[str, list[float]] = {"endpoint": [], "kafka": [], "instant endpoint": []}
    consumer = Consumer({"bootstrap.servers": get_bootstrap_server(settings), "group.id": f"bench-{uuid.uuid4()}",
                         "enable.auto.commit": False})
    stored = sum(consumer.get_watermark_offsets(TopicPartition(stream, p), timeout=10)[1] for p in range(SHARDS))
    ways = {"endpoint": lambda: read_through_endpoint(kinesis, stream), "kafka": lambda: read_directly(consumer, topic),
            "instant endpoint": lambda: read_instantly(instant, stored)}
    for round_number, way in turns(list(ways), rounds):
        bench.step(f"GetRecords round {round_number + 1}/{rounds}: {way}")
        began = time.perf_counter()
        count = ways[way]()
        rates[way].append(count / (time.perf_counter() - began))
    consumer.close()
    kafka = statistics.median(rates["kafka"])
    bench.figure(f"GetRecords, median of {rounds}", statistics.median(rates["endpoint"]), "records/s",
                 standard=kafka, standard_name="Kafka consumer, same partitions")
    bench.figure(f"GetRecords, {GET_LIMIT:,} a call, {INSTANT}", statistics.median(rates["instant endpoint"]),
                 "records/s", standard=kafka, standard_name="Kafka consumer")


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


def bench_athena(bench: Bench, settings, athena, output: str, queries: int) -> None:
    athena_query(athena, output), trino_query(settings)  # warm both paths
    through, direct = [], []
    for i in range(queries):
        bench.step(f"Athena against Trino, pair {i + 1}/{queries}")
        for way in ("athena", "trino") if i % 2 == 0 else ("trino", "athena"):
            (through if way == "athena" else direct).append(
                athena_query(athena, output) if way == "athena" else trino_query(settings))
    bench.figure(f"Athena StartQueryExecution -> SUCCEEDED, median of {queries} (p90 "
                 f"{percentile(through, 0.9) * 1000:.0f} ms)", statistics.median(through) * 1000, "ms",
                 standard=statistics.median(direct) * 1000, standard_name="Trino client, same SQL")
    bench.figure("Athena's overhead per query, median of the pairs",
                 statistics.median(a - t for a, t in zip(through, direct)) * 1000, "ms", at_most=50)


def run(bench: Bench) -> None:
    settings = bench.settings
    rounds, batches, calls, queries = (1, 1, 5, 2) if bench.smoke else (4, 30, 300, 16)
    kinesis, athena, s3 = (get_client(settings, s, retries={"max_attempts": 1}) for s in ("kinesis", "athena", "s3"))
    suffix = uuid.uuid4().hex[:8]
    stream, topic = f"bench-aws-endpoint-{suffix}", f"bench-aws-direct-{suffix}"
    bucket, output_prefix = resources().labs.lab_b.bucket, f"bench-aws-{suffix}/"
    for name in (stream, topic):
        kinesis.create_stream(StreamName=name, ShardCount=SHARDS)
    producer = Producer({"bootstrap.servers": get_bootstrap_server(settings), "enable.idempotence": True,
                         "linger.ms": 1})
    try:
        with instant_kinesis(GET_LIMIT, len(trades(1)[0][1])) as instant:
            bench_puts(bench, kinesis, instant, producer, stream, topic, rounds, batches)
            bench_single_puts(bench, kinesis, instant, producer, stream, topic, rounds, calls)
            bench_gets(bench, settings, kinesis, instant, stream, topic, max(1, rounds // 2))
        bench_athena(bench, settings, athena, f"s3://{bucket}/{output_prefix}", queries)
    finally:
        for name in (stream, topic):
            kinesis.delete_stream(StreamName=name)
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=output_prefix).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
