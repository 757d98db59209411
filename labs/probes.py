"""The small questions the lab checkers ask the stack (read only), and the few actions the lab
resets share: empty a topic, empty a prefix (every version of a versioned bucket), drop a table.
Everything goes through the services' clients."""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed
from trino.exceptions import TrinoUserError

from lakelab.settings import Settings
from services.kafka.client import get_bootstrap_server
from services.kafka.client import get_client as kafka_admin
from services.metastore.client import get_client as metastore
from services.s3.client import delete_prefix
from services.s3.client import get_client as s3_client
from services.trino.client import query


def topic_partitions(admin: AdminClient, topic: str) -> list[int] | None:
    """The topic's partitions, or None when there is no such topic. All topics are listed: asking
    for one by name would have a broker that auto-creates topics create it."""
    found = admin.list_topics(timeout=10).topics.get(topic)
    if found is None or found.error is not None:
        return None
    return sorted(found.partitions)


@retry(retry=retry_if_exception_type(KafkaException), stop=stop_after_delay(15), wait=wait_fixed(0.5), reraise=True)
def watermarks(consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
    """(low, high) offsets of a partition; a topic created a moment ago may have no leader yet."""
    return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)


def topic_records(settings: Settings, topic: str) -> int | None:
    """Records the topic holds now (high minus low watermark, over its partitions); None: no topic."""
    partitions = topic_partitions(kafka_admin(settings), topic)
    if partitions is None:
        return None
    consumer = Consumer({"bootstrap.servers": get_bootstrap_server(settings), "group.id": "lakelab-check",
                         "enable.auto.commit": False, "log_level": 0})
    try:
        total = 0
        for partition in partitions:
            low, high = watermarks(consumer, topic, partition)
            total += high - low
        return total
    finally:
        consumer.close()


def group_committed_the_end(settings: Settings, group: str, topic: str) -> bool:
    """Whether consumer group `group` has committed the end of every partition of `topic` that holds
    records (one no record went to stays uncommitted); asked without joining the group."""
    partitions = topic_partitions(kafka_admin(settings), topic)
    if partitions is None:
        return False
    consumer = Consumer({"bootstrap.servers": get_bootstrap_server(settings), "group.id": group,
                         "enable.auto.commit": False, "log_level": 0})
    try:
        committed = {c.partition: c.offset for c in consumer.committed([TopicPartition(topic, p) for p in partitions],
                                                                         timeout=10)}
        ends = {p: watermarks(consumer, topic, p)[1] for p in partitions}
        return all(end in (committed[p], 0) for p, end in ends.items())
    finally:
        consumer.close()


def topic_values(settings: Settings, topic: str, limit_per_partition: int = 20_000) -> list[tuple[int, bytes]]:
    """(timestamp ms, value) of the newest records of each partition, at most `limit_per_partition`."""
    partitions = topic_partitions(kafka_admin(settings), topic) or []
    consumer = Consumer({"bootstrap.servers": get_bootstrap_server(settings), "group.id": "lakelab-check",
                         "enable.auto.commit": False, "log_level": 0})
    found: list[tuple[int, bytes]] = []
    try:
        ranges = {}
        for partition in partitions:
            low, high = watermarks(consumer, topic, partition)
            if high > low:
                ranges[partition] = (max(low, high - limit_per_partition), high)
        consumer.assign([TopicPartition(topic, p, start) for p, (start, _) in ranges.items()])
        remaining = {p: high for p, (_, high) in ranges.items()}
        while remaining:
            messages = consumer.consume(1000, timeout=5)
            if not messages:
                break
            for message in messages:
                if message.error() is None:
                    found.append((message.timestamp()[1], message.value() or b""))
                    if message.offset() + 1 >= remaining.get(message.partition(), 0):
                        remaining.pop(message.partition(), None)
        return found
    finally:
        consumer.close()


def object_count(settings: Settings, bucket: str, prefix: str, limit: int = 1000) -> int:
    """Objects under s3://bucket/prefix (counted up to `limit`); 0 when the bucket is missing."""
    s3 = s3_client(settings)
    try:
        return s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=limit).get("KeyCount", 0)
    except s3.exceptions.NoSuchBucket:
        return 0


def bucket_exists(settings: Settings, bucket: str) -> bool:
    return bucket in {b["Name"] for b in s3_client(settings).list_buckets()["Buckets"]}


def trino_rows(settings: Settings, sql: str, schema: str = "default", catalog: str = "hive") -> list[list] | None:
    """The rows of a query, or None when Trino refuses it (e.g. no such table or column yet)."""
    try:
        return query(settings, sql, catalog, schema)
    except TrinoUserError:
        return None


def empty_topic(settings: Settings, topic: str) -> int:
    """Delete every record the topic holds (the topic stays, its consumers go on from its end).
    Returns how many records were deleted."""
    admin = kafka_admin(settings)
    partitions = topic_partitions(admin, topic)
    if not partitions:
        return 0
    held = topic_records(settings, topic) or 0
    if held:
        futures = admin.delete_records([TopicPartition(topic, p, -1) for p in partitions], operation_timeout=30)
        for future in futures.values():
            future.result()
    return held


def empty_prefix(settings: Settings, bucket: str, prefix: str) -> int:
    """Delete everything under s3://bucket/prefix, every version and delete marker too (a versioned
    bucket keeps overwritten and deleted objects otherwise). Returns the objects and versions removed."""
    s3 = s3_client(settings)
    removed = 0
    versioned = s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"
    if versioned:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            entries = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                       for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]]
            if entries:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": entries, "Quiet": True})
                removed += len(entries)
    else:
        removed = object_count(settings, bucket, prefix, limit=1000)
        delete_prefix(settings, f"s3://{bucket}/{prefix}")
    return removed


def drop_table(settings: Settings, database: str, table: str) -> bool:
    """Remove the table from the metastore (its files are another step). False: there was none."""
    return metastore(settings).drop_table(database, table)
