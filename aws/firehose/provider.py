"""Kinesis Data Firehose over the delivery job (aws/firehose/delivery.py): a delivery stream is a
Kafka topic delivered to S3 by a consumer thread in the endpoint process.

- `KinesisStreamAsSource`: the topic is the Kinesis stream's; delivery starts at the stream's
  end when the delivery stream is created (as Firehose reads from LATEST).
- `DirectPut`: PutRecord / PutRecordBatch write to a topic of the delivery stream's own,
  `_firehose-<name>` (hidden from Kinesis' ListStreams, as the buffer of a real Firehose is).

Only S3 destinations (ExtendedS3DestinationConfiguration, or the older S3DestinationConfiguration),
uncompressed, without format conversion, Lambda processing or dynamic partitioning. Prefixes may
hold `!{timestamp:yyyy|MM|dd|HH}` (arrival time, UTC) and the error prefix
`!{firehose:error-output-type}`; without expressions objects go under `YYYY/MM/dd/HH/`, as on AWS.
Records are newline-delimited JSON objects; anything else goes to the error prefix (the delivery
job's rule, see its docstring).

Definitions live in PostgreSQL (aws/gateway/store.py), so deliveries resume when the endpoint
starts again; delivery itself is exactly once per topic partition (the job's intents and commits).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from botocore.exceptions import ClientError
from confluent_kafka import Consumer, KafkaException, TopicPartition

from aws.firehose.delivery import DeliveryConfig, Firehose
from aws.gateway.auth import ACCOUNT_ID
from aws.gateway.errors import AwsError
from aws.gateway.provider import Provider, RequestContext
from aws.gateway.store import Store, jsonb
from aws.kinesis.kafka import Kafka
from aws.kinesis.shards import sequence_number
from lakelab.settings import Settings
from services.kafka.client import get_bootstrap_server
from services.s3.client import get_client as s3_client

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS firehose_delivery_streams (
    name           text PRIMARY KEY,
    request        jsonb NOT NULL,  -- the CreateDeliveryStream parameters, as sent
    topic          text NOT NULL,
    consumer_group text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""
DIRECT_PUT_TOPIC = "_firehose-{}"
DEFAULT_BUFFER_MB, DEFAULT_BUFFER_SECONDS = 5, 300  # Firehose's defaults for S3
DEFAULT_TIME_FOLDER = "{0:%Y}/{0:%m}/{0:%d}/{0:%H}/"  # YYYY/MM/dd/HH/, Firehose's prefix without expressions
TIMESTAMP_TOKENS = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H"}
ERROR_TYPE = "!{firehose:error-output-type}"
MAX_BATCH_BYTES = 4 * 1024 * 1024
DELIVERY_TIMEOUT_S = 30.0
RESTART_DELAY_S = 5.0


def _invalid(message: str) -> AwsError:
    return AwsError("InvalidArgumentException", message)


def _not_found(name: str) -> AwsError:
    return AwsError("ResourceNotFoundException", f"Firehose {name} under account {ACCOUNT_ID} not found.")


def _time_folder(expression: str, where: str) -> str:
    """`year=!{timestamp:yyyy}/month=!{timestamp:MM}/` -> `year={0:%Y}/month={0:%m}/`."""
    def convert(match: re.Match) -> str:
        kind, _, pattern = match.group(1).partition(":")
        if kind != "timestamp":
            raise _invalid(f"{where}: the expression !{{{match.group(1)}}} is not supported here; only "
                           "!{timestamp:...} with yyyy, MM, dd and HH (and !{firehose:error-output-type} in "
                           "ErrorOutputPrefix).")
        converted = re.sub(r"[A-Za-z]+", lambda token: TIMESTAMP_TOKENS.get(token.group(0), "\0"), pattern)
        if "\0" in converted:
            raise _invalid(f"{where}: !{{timestamp:{pattern}}} uses a pattern letter other than yyyy, MM, dd, HH "
                           "(delivery here buffers per arrival hour).")
        return "{0:" + converted + "}"

    literal = expression.replace("{", "{{").replace("}", "}}")
    return re.sub(r"!\{\{([^}]*)\}\}", convert, literal)


def layout(prefix: str, error_prefix: str) -> tuple[str, str, str]:
    """(data prefix, error prefix, time folder format) of a destination's Prefix and ErrorOutputPrefix.
    The delivery job writes `<prefix><time folder><object>` and `<error prefix><error type>/<time
    folder><object>`."""
    if "!{" not in prefix:
        if "!{" in error_prefix:
            raise _invalid("ErrorOutputPrefix cannot use expressions when Prefix has none.")
        return prefix, error_prefix or f"{prefix}processing-failed/", DEFAULT_TIME_FOLDER
    if not error_prefix:
        raise _invalid("ErrorOutputPrefix cannot be null or empty when Prefix contains expressions.")
    cut = prefix.rfind("/", 0, prefix.index("!{")) + 1
    base, folder = prefix[:cut], _time_folder(prefix[cut:], "Prefix")
    if ERROR_TYPE not in error_prefix:
        raise _invalid(f"ErrorOutputPrefix must contain {ERROR_TYPE} when Prefix contains expressions.")
    error_base, _, after = error_prefix.partition(ERROR_TYPE)
    if "!{" in error_base or _time_folder(after.removeprefix("/"), "ErrorOutputPrefix") != folder:
        raise _invalid(f"ErrorOutputPrefix must be <prefix>{ERROR_TYPE}/ followed by the same time folders as "
                       f"Prefix ({prefix[cut:]}); lakelab's delivery writes errors there.")
    return base, error_base, folder


@dataclass
class Delivery:
    """The consumer thread of one delivery stream."""

    config: DeliveryConfig
    stop: threading.Event
    thread: threading.Thread


class FirehoseProvider(Provider):
    resumes_work_at_start = True

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.store = Store(settings, SCHEMA)
        self.kafka = Kafka(get_bootstrap_server(settings))
        self._deliveries: dict[str, Delivery] = {}
        self._lock = threading.Lock()
        for name, request, topic, group in self.store.rows(
                "SELECT name, request, topic, consumer_group FROM firehose_delivery_streams"):
            self._start(name, self._config(request, topic, group))

    def close(self) -> None:
        with self._lock:
            deliveries = list(self._deliveries.values())
            self._deliveries.clear()
        for delivery in deliveries:
            delivery.stop.set()
        for delivery in deliveries:
            delivery.thread.join(timeout=60)
        self.kafka.close()
        self.store.close()

    # -- delivery streams --------------------------------------------------------------------------

    def create_delivery_stream(self, context: RequestContext, params: dict) -> dict:
        name = params["DeliveryStreamName"]
        kind = params.get("DeliveryStreamType", "DirectPut")
        destination = self._destination(params)
        bucket = self._bucket(destination["BucketARN"])
        layout(destination.get("Prefix", ""), destination.get("ErrorOutputPrefix", ""))  # refused before making a topic
        if self.store.rows("SELECT 1 FROM firehose_delivery_streams WHERE name = %s", (name,)):
            raise AwsError("ResourceInUseException", f"Firehose {name} under accountId {ACCOUNT_ID} already exists")
        if kind == "KinesisStreamAsSource":
            source = params.get("KinesisStreamSourceConfiguration")
            if source is None:
                raise _invalid("KinesisStreamSourceConfiguration is required for a KinesisStreamAsSource delivery "
                               "stream.")
            topic = source["KinesisStreamARN"].split(":stream/", 1)[-1]
            if topic not in self.kafka.topics():
                raise _invalid(f"Kinesis stream {source['KinesisStreamARN']} does not exist.")
        elif kind == "DirectPut":
            topic = DIRECT_PUT_TOPIC.format(name)
            if topic not in self.kafka.topics():
                self.kafka.create_topic(topic, 1, {})
        else:
            raise _invalid(f"DeliveryStreamType {kind} is not supported here: use DirectPut or "
                           "KinesisStreamAsSource.")
        group = f"firehose-{name}-{int(datetime.now(timezone.utc).timestamp() * 1000)}"
        config = self._config(params, topic, group)
        if kind == "KinesisStreamAsSource":
            self._start_at_end(topic, group)
        log.info("delivery stream %s: %s -> s3://%s/%s", name, topic, bucket, config.prefix)
        self.store.rows("INSERT INTO firehose_delivery_streams (name, request, topic, consumer_group) "
                        "VALUES (%s, %s, %s, %s)", (name, jsonb(params), topic, group))
        self._start(name, config)
        return {"DeliveryStreamARN": context.arn(f"deliverystream/{name}")}

    def describe_delivery_stream(self, context: RequestContext, params: dict) -> dict:
        name = params["DeliveryStreamName"]
        rows = self.store.rows("SELECT request, created_at FROM firehose_delivery_streams WHERE name = %s", (name,))
        if not rows:
            raise _not_found(name)
        request, created = rows[0]
        destination = self._destination(request)
        hints = destination.get("BufferingHints", {})
        described = {
            "RoleARN": destination["RoleARN"], "BucketARN": destination["BucketARN"],
            "Prefix": destination.get("Prefix", ""), "ErrorOutputPrefix": destination.get("ErrorOutputPrefix", ""),
            "BufferingHints": {"SizeInMBs": hints.get("SizeInMBs", DEFAULT_BUFFER_MB),
                               "IntervalInSeconds": hints.get("IntervalInSeconds", DEFAULT_BUFFER_SECONDS)},
            "CompressionFormat": "UNCOMPRESSED",
            "EncryptionConfiguration": {"NoEncryptionConfig": "NoEncryption"},
        }
        kind = request.get("DeliveryStreamType", "DirectPut")
        description = {
            "DeliveryStreamName": name,
            "DeliveryStreamARN": context.arn(f"deliverystream/{name}"),
            "DeliveryStreamStatus": "ACTIVE",
            "DeliveryStreamType": kind,
            "VersionId": "1",
            "CreateTimestamp": created,
            "Destinations": [{"DestinationId": "destinationId-000000000001",
                              "ExtendedS3DestinationDescription": {**described, "S3BackupMode": "Disabled"},
                              "S3DestinationDescription": described}],
            "HasMoreDestinations": False,
        }
        if kind == "KinesisStreamAsSource":
            source = request["KinesisStreamSourceConfiguration"]
            description["Source"] = {"KinesisStreamSourceDescription": {**source, "DeliveryStartTimestamp": created}}
        return {"DeliveryStreamDescription": description}

    def list_delivery_streams(self, context: RequestContext, params: dict) -> dict:
        rows = self.store.rows("SELECT name, request FROM firehose_delivery_streams ORDER BY name")
        kind = params.get("DeliveryStreamType")
        after = params.get("ExclusiveStartDeliveryStreamName")
        names = [name for name, request in rows if (kind is None or request.get("DeliveryStreamType", "DirectPut")
                                                    == kind) and (after is None or name > after)]
        limit = params.get("Limit", 10)
        return {"DeliveryStreamNames": names[:limit], "HasMoreDeliveryStreams": len(names) > limit}

    def delete_delivery_stream(self, context: RequestContext, params: dict) -> dict:
        name = params["DeliveryStreamName"]
        rows = self.store.rows("DELETE FROM firehose_delivery_streams WHERE name = %s RETURNING topic", (name,))
        if not rows:
            raise _not_found(name)
        topic = rows[0][0]
        with self._lock:
            delivery = self._deliveries.pop(name, None)
        if delivery is not None:  # the consumer flushes what it buffered before it stops
            delivery.stop.set()
            delivery.thread.join(timeout=60)
        if topic == DIRECT_PUT_TOPIC.format(name):
            self.kafka.delete_topic(topic)
        # the consumer group stays until Kafka expires its offsets: a static member (the delivery
        # job's) does not leave on close, so Kafka refuses to delete the group now
        return {}

    # -- records -----------------------------------------------------------------------------------

    def put_record(self, context: RequestContext, params: dict) -> dict:
        topic = self._direct_put_topic(params["DeliveryStreamName"])
        [message] = self.kafka.produce_all(topic, [(0, None, params["Record"]["Data"])], DELIVERY_TIMEOUT_S)
        if isinstance(message, KafkaException):
            raise AwsError("ServiceUnavailableException", f"Slow down. The record was not stored: {message}")
        return {"RecordId": sequence_number(0, message.offset()), "Encrypted": False}

    def put_record_batch(self, context: RequestContext, params: dict) -> dict:
        topic = self._direct_put_topic(params["DeliveryStreamName"])
        records = params["Records"]
        if sum(len(record["Data"]) for record in records) > MAX_BATCH_BYTES:
            raise _invalid(f"Records size exceeds {MAX_BATCH_BYTES} bytes.")
        delivered = self.kafka.produce_all(topic, [(0, None, record["Data"]) for record in records], DELIVERY_TIMEOUT_S)
        responses, failed = [], 0
        for outcome in delivered:
            if isinstance(outcome, KafkaException):
                responses.append({"ErrorCode": "ServiceUnavailableException", "ErrorMessage": f"Slow down. {outcome}"})
                failed += 1
            else:
                responses.append({"RecordId": sequence_number(0, outcome.offset())})
        return {"FailedPutCount": failed, "Encrypted": False, "RequestResponses": responses}

    # -- helpers -----------------------------------------------------------------------------------

    def _direct_put_topic(self, name: str) -> str:
        rows = self.store.rows("SELECT topic FROM firehose_delivery_streams WHERE name = %s", (name,))
        if not rows:
            raise _not_found(name)
        if rows[0][0] != DIRECT_PUT_TOPIC.format(name):
            raise _invalid("This operation is not permitted on KinesisStreamAsSource type.")
        return rows[0][0]

    @staticmethod
    def _destination(params: dict) -> dict:
        destination = params.get("ExtendedS3DestinationConfiguration") or params.get("S3DestinationConfiguration")
        others = [key for key in params if key.endswith("DestinationConfiguration") and
                  key not in ("ExtendedS3DestinationConfiguration", "S3DestinationConfiguration")]
        if destination is None or others:
            raise _invalid("lakelab's Firehose delivers to S3 only: give ExtendedS3DestinationConfiguration (or "
                           "S3DestinationConfiguration)" + (f", not {', '.join(others)}." if others else "."))
        if destination.get("CompressionFormat", "UNCOMPRESSED") != "UNCOMPRESSED":
            raise _invalid(f"CompressionFormat {destination['CompressionFormat']} is not supported here: delivery "
                           "writes uncompressed newline-delimited JSON.")
        for feature in ("DataFormatConversionConfiguration", "ProcessingConfiguration",
                        "DynamicPartitioningConfiguration"):
            if destination.get(feature, {}).get("Enabled"):
                raise _invalid(f"{feature} is not supported here.")
        return destination

    def _bucket(self, arn: str) -> str:
        bucket = arn.removeprefix("arn:aws:s3:::")
        try:
            s3_client(self.settings).head_bucket(Bucket=bucket)
        except ClientError as exc:
            raise _invalid(f"BucketARN {arn}: bucket {bucket} is not there "
                           f"({exc.response['Error'].get('Code')}).") from exc
        return bucket

    def _config(self, request: dict, topic: str, group: str) -> DeliveryConfig:
        destination = self._destination(request)
        prefix, error_prefix, time_folder = layout(destination.get("Prefix", ""),
                                                   destination.get("ErrorOutputPrefix", ""))
        hints = destination.get("BufferingHints", {})
        return DeliveryConfig(topic=topic, bucket=destination["BucketARN"].removeprefix("arn:aws:s3:::"),
                              prefix=prefix, error_prefix=error_prefix,
                              buffer_bytes=hints.get("SizeInMBs", DEFAULT_BUFFER_MB) * 1024 * 1024,
                              buffer_seconds=hints.get("IntervalInSeconds", DEFAULT_BUFFER_SECONDS),
                              group_id=group, time_folder=time_folder)

    def _start_at_end(self, topic: str, group: str) -> None:
        """Commit the topic's end as the new consumer group's position: delivery takes the records
        put from now on."""
        consumer = Consumer({"bootstrap.servers": get_bootstrap_server(self.settings), "group.id": group,
                             "enable.auto.commit": False})
        try:
            partitions = self.kafka.topics()[topic].partitions
            ends = [TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
                    for p in partitions]
            consumer.commit(offsets=ends, asynchronous=False)
        finally:
            consumer.close()

    def _start(self, name: str, config: DeliveryConfig) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=self._deliver, args=(name, config, stop), name=f"firehose-{name}",
                                  daemon=True)
        with self._lock:
            self._deliveries[name] = Delivery(config, stop, thread)
        thread.start()

    def _deliver(self, name: str, config: DeliveryConfig, stop: threading.Event) -> None:
        """Run the delivery job until the stream is deleted or the endpoint stops; a failure (S3 or
        Kafka away) restarts it from its last commit."""
        while not stop.is_set():
            try:
                Firehose(self.settings, config).run(stop)
            except Exception:  # noqa: BLE001 - logged; the job resumes from its last commit
                log.exception("delivery stream %s failed; restarting in %.0f s", name, RESTART_DELAY_S)
                stop.wait(RESTART_DELAY_S)
