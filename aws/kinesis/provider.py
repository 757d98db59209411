"""Kinesis Data Streams over Kafka. A stream is a topic (any existing topic is a stream too), a
shard is a partition, a record is a Kafka message: value = the Data bytes, key = the PartitionKey,
ApproximateArrivalTimestamp = the message timestamp. A record goes to the shard whose hash-key
range holds the MD5 of its partition key (or its ExplicitHashKey), as on Kinesis.

Not kept anywhere, since Kafka has no place for them: stream creation times and modes are known
for streams created through this endpoint since it started; otherwise a stream is PROVISIONED and
its creation time is when the endpoint first saw it.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from datetime import datetime, timezone

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka.admin import TopicMetadata

from aws.gateway.auth import ACCOUNT_ID
from aws.gateway.errors import AwsError
from aws.gateway.provider import Provider, RequestContext
from aws.gateway.validation import validation_error
from aws.kinesis.kafka import MAX_MESSAGE_BYTES, Kafka
from aws.kinesis.shards import (
    HASH_SPACE, ShardIterator, hash_key_ranges, parse_sequence_number, partition_of, sequence_number,
    shard_for_hash, shard_for_key, shard_id,
)
from lakelab.settings import Settings

MAX_RECORD_BYTES = 1024 * 1024  # Kinesis' default MaxRecordSizeInKiB, 1024
MAX_PUT_RECORDS_BYTES = 5 * 1024 * 1024
MAX_GET_RECORDS_BYTES = 10 * 1024 * 1024
ON_DEMAND_SHARDS = 4  # what Kinesis gives a new on-demand stream
MAX_SHARDS = 200
DELIVERY_TIMEOUT_S = 30.0
# How old the record calls' view of the streams may be. Fetching Kafka's metadata for every
# PutRecord took most of its time; streams created or deleted here refresh the view at once, and
# a stream missing from it is looked up afresh before it is called unknown.
RECORD_CALLS_TOPICS_AGE_S = 1.0
THROTTLED = {KafkaError._QUEUE_FULL, KafkaError._MSG_TIMED_OUT, KafkaError.THROTTLING_QUOTA_EXCEEDED}


def _error(code: str, message: str) -> AwsError:
    return AwsError(code, message)


def _now_ms() -> int:
    return int(time.time() * 1000)


class KinesisProvider(Provider):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.kafka = Kafka(settings.kafka_bootstrap)
        self._lock = threading.Lock()
        self._known: dict[str, tuple[datetime, str]] = {}  # stream -> (creation time, mode)
        self._topics_seen: tuple[float, dict[str, TopicMetadata]] = (float("-inf"), {})
        self._topics_generation = 0  # a view fetched before a create or delete here is not kept

    def close(self) -> None:
        self.kafka.close()

    # -- streams ---------------------------------------------------------------------------------

    def create_stream(self, context: RequestContext, params: dict) -> dict:
        name = params["StreamName"]
        mode = params.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED" if "ShardCount" in params
                                                       else "ON_DEMAND")
        if mode == "PROVISIONED" and "ShardCount" not in params:
            raise _error("InvalidArgumentException", "ShardCount is required for a PROVISIONED stream.")
        if mode == "ON_DEMAND" and "ShardCount" in params:
            raise _error("InvalidArgumentException", "ShardCount cannot be given for an ON_DEMAND stream.")
        if params.get("MaxRecordSizeInKiB", 1024) != 1024:
            raise _error("InvalidArgumentException", "This endpoint keeps Kinesis' default MaxRecordSizeInKiB, 1024.")
        if params.get("RecordDistributionStrategy", "USER_PARTITION_KEY") != "USER_PARTITION_KEY":
            raise _error("InvalidArgumentException", "Only the USER_PARTITION_KEY record distribution is supported.")
        shards = params.get("ShardCount", ON_DEMAND_SHARDS)
        if shards > MAX_SHARDS:
            raise _error("LimitExceededException", f"This request would exceed the shard limit for the account "
                                                   f"{ACCOUNT_ID} in {context.region}. Limit: {MAX_SHARDS}. Number of "
                                                   f"additional shards that would have resulted from this request: "
                                                   f"{shards}.")
        try:
            self.kafka.create_topic(name, shards, {"max.message.bytes": str(MAX_MESSAGE_BYTES)})
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                raise _error("ResourceInUseException", f"Stream {name} under account {ACCOUNT_ID} already exists.")
            raise _error("InvalidArgumentException", f"Kafka refused topic {name}: {error.str()}") from exc
        with self._lock:
            self._known[name] = (datetime.now(timezone.utc), mode)
            self._forget_topics()
        return {}

    def delete_stream(self, context: RequestContext, params: dict) -> dict:
        name = self._name(params)
        # Forgotten before (no record call finds the stream in the view once it is gone) and after
        # (a view fetched while Kafka deleted it is not kept): producing to a deleted topic would
        # have the broker create it again.
        with self._lock:
            self._forget_topics()
        if not self.kafka.delete_topic(name):
            raise self._not_found(name)
        with self._lock:
            self._known.pop(name, None)
            self._forget_topics()
        return {}

    def list_streams(self, context: RequestContext, params: dict) -> dict:
        topics = self.kafka.topics()
        start = params.get("ExclusiveStartStreamName")
        if "NextToken" in params:
            [start] = self._decode_token(params["NextToken"], 1)
        names = sorted(name for name in topics if start is None or name > start)
        limit = params.get("Limit", 100)
        page = names[:limit]
        result = {
            "StreamNames": page,
            "HasMoreStreams": len(names) > limit,
            "StreamSummaries": [self._summary(context, name, topics[name]) for name in page],
        }
        if result["HasMoreStreams"]:
            result["NextToken"] = self._encode_token(page[-1])
        return result

    def describe_stream(self, context: RequestContext, params: dict) -> dict:
        name = self._name(params)
        topic = self._topic(name)
        partitions = sorted(topic.partitions)
        if "ExclusiveStartShardId" in params:
            after = self._partition(params["ExclusiveStartShardId"], name)
            partitions = [p for p in partitions if p > after]
        limit = params.get("Limit", 100)
        description = {
            **self._summary(context, name, topic),
            "Shards": [self._shard(p, len(topic.partitions)) for p in partitions[:limit]],
            "HasMoreShards": len(partitions) > limit,
            "RetentionPeriodHours": self._retention_hours(name),
            "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
            "EncryptionType": "NONE",
        }
        return {"StreamDescription": description}

    def describe_stream_summary(self, context: RequestContext, params: dict) -> dict:
        name = self._name(params)
        topic = self._topic(name)
        summary = {
            **self._summary(context, name, topic),
            "RetentionPeriodHours": self._retention_hours(name),
            "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
            "EncryptionType": "NONE",
            "OpenShardCount": len(topic.partitions),
            "ConsumerCount": 0,
            "MaxRecordSizeInKiB": MAX_RECORD_BYTES // 1024,
        }
        return {"StreamDescriptionSummary": summary}

    def list_shards(self, context: RequestContext, params: dict) -> dict:
        if "NextToken" in params:
            if "StreamName" in params or "StreamARN" in params:
                raise _error("InvalidArgumentException", "NextToken and StreamName cannot be provided together.")
            name, after = self._decode_token(params["NextToken"], 2)
        else:
            name = self._name(params)
            after = params.get("ExclusiveStartShardId")
        shard_filter = params.get("ShardFilter", {})
        if shard_filter.get("Type") == "AFTER_SHARD_ID":
            after = shard_filter.get("ShardId", after)
        # every shard is open (no resharding), so the other filter types select them all
        topic = self._topic(name)
        partitions = sorted(topic.partitions)
        if after is not None:
            first = self._partition(after, name) if isinstance(after, str) else after
            partitions = [p for p in partitions if p > first]
        limit = params.get("MaxResults", 1000)
        result: dict = {"Shards": [self._shard(p, len(topic.partitions)) for p in partitions[:limit]]}
        if len(partitions) > limit:
            result["NextToken"] = self._encode_token(name, partitions[limit - 1])
        return result

    # -- records ---------------------------------------------------------------------------------

    def put_record(self, context: RequestContext, params: dict) -> dict:
        name = self._name(params)
        topic = self._topic(name, RECORD_CALLS_TOPICS_AGE_S)
        partition = self._route(params, len(topic.partitions), "")
        self._dry_run(params)
        key = params["PartitionKey"].encode()
        [message] = self.kafka.produce_all(name, [(partition, key, params["Data"])], DELIVERY_TIMEOUT_S)
        if isinstance(message, KafkaException):
            raise self._refused(message, name, partition) from message
        return {"ShardId": shard_id(partition), "SequenceNumber": sequence_number(partition, message.offset()),
                "EncryptionType": "NONE"}

    def put_records(self, context: RequestContext, params: dict) -> dict:
        name = self._name(params)
        topic = self._topic(name, RECORD_CALLS_TOPICS_AGE_S)
        entries = params["Records"]
        partitions = [self._route(entry, len(topic.partitions), f"records.{i}.member.")
                      for i, entry in enumerate(entries, 1)]
        if sum(len(e["Data"]) + len(e.get("PartitionKey", "").encode()) for e in entries) > MAX_PUT_RECORDS_BYTES:
            raise _error("InvalidArgumentException", f"Records size exceeds {MAX_PUT_RECORDS_BYTES} bytes.")
        self._dry_run(params)
        delivered = self.kafka.produce_all(name, [(p, e["PartitionKey"].encode(), e["Data"])
                                                  for p, e in zip(partitions, entries)], DELIVERY_TIMEOUT_S)
        results, failed = [], 0
        shard_ids = {partition: shard_id(partition) for partition in set(partitions)}
        for partition, outcome in zip(partitions, delivered):
            if isinstance(outcome, KafkaException):
                error = self._refused(outcome, name, partition)
                code = "ProvisionedThroughputExceededException" if error.code.startswith("Provisioned") \
                    else "InternalFailure"
                results.append({"ErrorCode": code, "ErrorMessage": error.message})
                failed += 1
            else:
                results.append({"ShardId": shard_ids[partition],
                                "SequenceNumber": sequence_number(partition, outcome.offset())})
        return {"FailedRecordCount": failed, "Records": results, "EncryptionType": "NONE"}

    def get_shard_iterator(self, context: RequestContext, params: dict) -> dict:
        name = self._name(params)
        topic = self._topic(name, RECORD_CALLS_TOPICS_AGE_S)
        shard = params["ShardId"]
        partition = self._partition(shard, name)
        if partition not in topic.partitions:
            raise self._no_shard(shard, name)
        kind = params["ShardIteratorType"]
        low, high = self.kafka.watermarks(name, partition)
        if kind == "TRIM_HORIZON":
            offset = low
        elif kind == "LATEST":
            offset = high
        elif kind == "AT_TIMESTAMP":
            if "Timestamp" not in params:
                raise _error("InvalidArgumentException", "Must specify timestampInMillis parameter for iterator of "
                                                         "type AT_TIMESTAMP. Current request has no timestamp "
                                                         "parameter.")
            found = self.kafka.offset_at(name, partition, int(params["Timestamp"].timestamp() * 1000))
            offset = high if found is None else found
        else:  # AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER
            offset = self._sequence_offset(params.get("StartingSequenceNumber"), kind, shard, name, partition, high)
        self._dry_run(params)
        return {"ShardIterator": ShardIterator(name, partition, offset, _now_ms()).encode()}

    def get_records(self, context: RequestContext, params: dict) -> dict:
        try:
            position = ShardIterator.decode(params["ShardIterator"])
        except ValueError:
            raise _error("InvalidArgumentException", "Invalid ShardIterator.") from None
        now = _now_ms()
        if position.expired(now):
            raise _error("ExpiredIteratorException", (
                f"Iterator expired. The iterator was created at time {_java_date(position.issued_ms)} while right "
                f"now it is {_java_date(now)} which is further in the future than the tolerated delay of 300000 "
                "milliseconds."))
        topic = self._topic(position.stream, RECORD_CALLS_TOPICS_AGE_S)
        if position.partition not in topic.partitions:
            raise self._no_shard(shard_id(position.partition), position.stream)
        self._dry_run(params)
        low, high = self.kafka.watermarks(position.stream, position.partition)
        offset = max(position.offset, low)  # records past retention are gone, as past Kinesis' trim horizon
        messages = self.kafka.read(position.stream, position.partition, offset, high, params.get("Limit", 10_000),
                                   MAX_GET_RECORDS_BYTES) if offset < high else []
        next_offset = messages[-1].offset() + 1 if messages else offset
        behind = 0
        if messages and next_offset < high:
            behind = max(0, now - self._timestamp_ms(messages[-1]))
        return {
            "Records": [self._record(position.partition, m) for m in messages],
            "NextShardIterator": ShardIterator(position.stream, position.partition, next_offset, now).encode(),
            "MillisBehindLatest": behind,
        }

    # -- helpers ---------------------------------------------------------------------------------

    def _name(self, params: dict) -> str:
        name, arn = params.get("StreamName"), params.get("StreamARN")
        if arn is not None:
            from_arn = arn.split(":stream/", 1)[-1]
            if name is not None and name != from_arn:
                raise _error("InvalidArgumentException", f"StreamName {name} and StreamARN {arn} name different "
                                                         "streams.")
            return from_arn
        if name is None:
            raise _error("InvalidArgumentException", "Either StreamName or StreamARN must be provided.")
        return name

    def _forget_topics(self) -> None:
        """Called with the lock held."""
        self._topics_seen = (float("-inf"), {})
        self._topics_generation += 1

    def _topics(self, max_age_s: float) -> dict[str, TopicMetadata]:
        with self._lock:
            (taken, topics), generation = self._topics_seen, self._topics_generation
        if time.monotonic() - taken > max_age_s:
            taken, topics = time.monotonic(), self.kafka.topics()
            with self._lock:
                if generation == self._topics_generation:
                    self._topics_seen = (taken, topics)
        return topics

    def _topic(self, name: str, max_age_s: float = 0.0) -> TopicMetadata:
        topic = self._topics(max_age_s).get(name)
        if topic is None and max_age_s > 0:
            topic = self._topics(0.0).get(name)
        if topic is None or topic.error is not None and topic.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise self._not_found(name)
        return topic

    @staticmethod
    def _not_found(name: str) -> AwsError:
        return _error("ResourceNotFoundException", f"Stream {name} under account {ACCOUNT_ID} not found.")

    @staticmethod
    def _no_shard(shard: str, name: str) -> AwsError:
        return _error("ResourceNotFoundException", f"Shard {shard} in stream {name} under account {ACCOUNT_ID} "
                                                   "does not exist")

    def _partition(self, shard: str, name: str) -> int:
        try:
            return partition_of(shard)
        except ValueError:
            raise self._no_shard(shard, name) from None

    def _summary(self, context: RequestContext, name: str, topic: TopicMetadata) -> dict:
        with self._lock:
            created, mode = self._known.setdefault(name, (datetime.now(timezone.utc), "PROVISIONED"))
        ready = topic.partitions and all(p.leader >= 0 for p in topic.partitions.values())
        return {"StreamName": name, "StreamARN": context.arn(f"stream/{name}"),
                "StreamStatus": "ACTIVE" if ready else "CREATING",
                "StreamModeDetails": {"StreamMode": mode}, "StreamCreationTimestamp": created}

    @staticmethod
    def _shard(partition: int, count: int) -> dict:
        start, end = hash_key_ranges(count)[partition]
        return {"ShardId": shard_id(partition),
                "HashKeyRange": {"StartingHashKey": str(start), "EndingHashKey": str(end)},
                "SequenceNumberRange": {"StartingSequenceNumber": sequence_number(partition, 0)}}

    def _retention_hours(self, name: str) -> int:
        retention_ms = int(self.kafka.topic_config(name).get("retention.ms") or -1)
        return 8760 if retention_ms < 0 else max(1, retention_ms // 3_600_000)  # unlimited: Kinesis' maximum

    def _route(self, entry: dict, partitions: int, path: str) -> int:
        """The partition of a record; checks what the model cannot (this stream's record size)."""
        if len(entry["Data"]) > MAX_RECORD_BYTES:
            raise validation_error([f"Value at '{path}data' failed to satisfy constraint: Member must have length "
                                    f"less than or equal to {MAX_RECORD_BYTES}"])
        if entry.get("PartitionKey") is None:
            raise validation_error([f"Value null at '{path}partitionKey' failed to satisfy constraint: Member must "
                                    "not be null"])
        explicit = entry.get("ExplicitHashKey")
        if explicit is not None:
            if int(explicit) >= HASH_SPACE:
                raise _error("InvalidArgumentException", "Invalid ExplicitHashKey. ExplicitHashKey must be in the "
                                                         f"range: [0, 2^128-1]. Specified value was {explicit}")
            return shard_for_hash(int(explicit), partitions)
        return shard_for_key(entry["PartitionKey"], partitions)

    @staticmethod
    def _dry_run(params: dict) -> None:
        if params.get("DryRun"):
            raise _error("DryRunOperationException", "The request would have succeeded, but the DryRun parameter "
                                                     "was specified.")

    def _refused(self, exc: Exception, name: str, partition: int) -> AwsError:
        """What a Kafka delivery failure is to a Kinesis client."""
        error = exc.args[0] if isinstance(exc, KafkaException) else None
        if error is None or error.code() in THROTTLED:
            return _error("ProvisionedThroughputExceededException", f"Rate exceeded for shard {shard_id(partition)} "
                                                                    f"in stream {name} under account {ACCOUNT_ID}.")
        if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return self._not_found(name)
        return AwsError("InternalFailureException", f"Kafka refused the record: {error.str()}", 500)

    def _sequence_offset(self, sequence: str | None, kind: str, shard: str, name: str, partition: int,
                         high: int) -> int:
        if sequence is None:
            raise _error("InvalidArgumentException", "StartingSequenceNumber is required for ShardIteratorType "
                                                     f"{kind}.")
        try:
            encoded_partition, offset = parse_sequence_number(sequence)
        except ValueError:
            raise _error("InvalidArgumentException", f"StartingSequenceNumber {sequence} used in GetShardIterator on "
                                                     f"shard {shard} in stream {name} under account {ACCOUNT_ID} is "
                                                     "invalid.") from None
        if encoded_partition != partition:
            raise _error("InvalidArgumentException", "Invalid StartingSequenceNumber. It encodes "
                                                     f"{shard_id(encoded_partition)}, while it was used in a call to "
                                                     f"a shard with {shard_id(partition)}")
        if offset >= high:
            raise _error("InvalidArgumentException", f"StartingSequenceNumber {sequence} used in GetShardIterator on "
                                                     f"shard {shard} in stream {name} under account {ACCOUNT_ID} is "
                                                     "beyond the last record of the shard.")
        return offset if kind == "AT_SEQUENCE_NUMBER" else offset + 1

    @staticmethod
    def _timestamp_ms(message: Message) -> int:
        kind, value = message.timestamp()
        return value if value > 0 else _now_ms()

    def _record(self, partition: int, message: Message) -> dict:
        key = message.key()
        return {
            "SequenceNumber": sequence_number(partition, message.offset()),
            "ApproximateArrivalTimestamp": datetime.fromtimestamp(self._timestamp_ms(message) / 1000, timezone.utc),
            "Data": message.value() or b"",
            "PartitionKey": key.decode("utf-8", "replace") if key else "",
        }

    @staticmethod
    def _encode_token(*position: object) -> str:
        return base64.b64encode(json.dumps(position).encode()).decode()

    @staticmethod
    def _decode_token(token: str, size: int) -> list:
        try:
            decoded = json.loads(base64.b64decode(token, validate=True))
            if isinstance(decoded, list) and len(decoded) == size:
                return decoded
        except (binascii.Error, ValueError, UnicodeDecodeError):
            pass
        raise _error("InvalidArgumentException", "Invalid NextToken.")


def _java_date(ms: int) -> str:
    """Kinesis writes times in its messages as Java's Date.toString does: Thu Jan 22 01:22:02 UTC 2015."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%a %b %d %H:%M:%S UTC %Y")
