"""The Kafka side of the Kinesis provider: topic admin, a producer that waits for a batch's deliveries,
and a small pool of assign-only consumers (no consumer group) for positioned reads."""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from functools import partial

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, TopicMetadata

from aws.gateway.errors import AwsError, CommonError

# A 1 MiB record, its key (<= 256 bytes) and the record batch overhead fit in one Kafka message
MAX_MESSAGE_BYTES = 1024 * 1024 + 64 * 1024
TIMEOUT_S = 10.0
READ_WAIT_S = 1.0  # how long one read waits for records the watermark says are there
POOL_SIZE = 4


class Kafka:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        common = {"bootstrap.servers": bootstrap, "allow.auto.create.topics": False}
        self._admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000})
        # Idempotence keeps each partition's records in the order they were sent, retries included.
        # No linger: a PutRecord waits for its delivery, and a lingering 1 ms made it 5x slower,
        # while PutRecords' 500 records batch up anyway behind the first request in flight.
        self._producer = Producer({**common, "enable.idempotence": True, "linger.ms": 0,
                                   "message.max.bytes": MAX_MESSAGE_BYTES, "message.timeout.ms": 15_000})
        self._consumer_config = {**common, "group.id": "lakelab-aws-endpoint", "enable.auto.commit": False,
                                 "enable.auto.offset.store": False,
                                 # re-assigning a pooled consumer waits for its last fetch: keep that short
                                 "fetch.wait.max.ms": 10}
        self._idle: queue.LifoQueue[Consumer] = queue.LifoQueue()
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kinesis-producer-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.1)  # runs produce_all's delivery callbacks

    def _unavailable(self, exc: BaseException) -> AwsError:
        return CommonError("ServiceUnavailable", f"Kafka at {self.bootstrap} did not answer: {exc}")

    def topics(self) -> dict[str, TopicMetadata]:
        """Every topic but Kafka's internal ones ("_..."), by name."""
        try:
            metadata = self._admin.list_topics(timeout=TIMEOUT_S)
        except KafkaException as exc:
            raise self._unavailable(exc) from exc
        return {name: topic for name, topic in metadata.topics.items() if not name.startswith("_")}

    def create_topic(self, name: str, partitions: int, config: dict[str, str]) -> None:
        """Raise KafkaException TOPIC_ALREADY_EXISTS and other refusals as Kafka words them."""
        future = self._admin.create_topics([NewTopic(name, partitions, 1, config=config)],
                                           operation_timeout=TIMEOUT_S)[name]
        self._result(future)
        # The broker's metadata may lag the controller, and the producer's its own: answer once the
        # topic is there to use, for the producer too (else a PutRecord right after CreateStream
        # fails with "Unknown partition").
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            topic = self.topics().get(name)
            if topic is not None and len(topic.partitions) == partitions and \
                    all(p.leader >= 0 for p in topic.partitions.values()):
                break
            time.sleep(0.05)
        while time.monotonic() < deadline:
            known = self._producer.list_topics(name, timeout=TIMEOUT_S).topics.get(name)
            if known is not None and known.error is None and len(known.partitions) == partitions:
                return
            time.sleep(0.05)

    def delete_topic(self, name: str) -> bool:
        """False if there was no such topic."""
        try:
            self._result(self._admin.delete_topics([name], operation_timeout=TIMEOUT_S)[name])
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return False
            raise
        return True

    def topic_config(self, name: str) -> dict[str, str]:
        future = self._admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, name)])
        entries = self._result(next(iter(future.values())))
        return {key: entry.value for key, entry in entries.items()}

    def _result(self, future: Future):
        try:
            return future.result(timeout=TIMEOUT_S + 5)
        except KafkaException as exc:
            if exc.args[0].code() in (KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN):
                raise self._unavailable(exc) from exc
            raise

    def produce_all(self, topic: str, records: list[tuple[int, bytes | None, bytes]],
                    timeout_s: float) -> list[Message | KafkaException]:
        """Send (partition, key, value) records and wait for all of them: each one's delivered
        message, or the KafkaException that refused it (a timeout for those still unanswered).
        One `produce_batch` per partition and one wait for the call: at PutRecords' 500 records a
        produce() and a future per record took a third of the endpoint's time."""
        results: list[Message | KafkaException | None] = [None] * len(records)
        answered, all_done = itertools.count(1), threading.Event()

        def answer(index: int, outcome: Message | KafkaException) -> None:
            results[index] = outcome
            if next(answered) == len(records):  # itertools.count's next() is atomic: no lock needed
                all_done.set()

        def on_delivery(index: int, error: KafkaError | None, message: Message) -> None:
            answer(index, message if error is None else KafkaException(error))

        by_partition: dict[int, list[int]] = {}
        for index, (partition, _, _) in enumerate(records):
            by_partition.setdefault(partition, []).append(index)
        for partition, indexes in by_partition.items():
            # produce_batch takes the partition per call: a message's own "partition" is ignored
            batch = [{"key": records[i][1], "value": records[i][2], "callback": partial(on_delivery, i)}
                     for i in indexes]
            try:
                self._producer.produce_batch(topic, batch, partition=partition)
            except (KafkaException, BufferError) as exc:  # refused before any of them was queued
                error = exc if isinstance(exc, KafkaException) else KafkaException(KafkaError(KafkaError._QUEUE_FULL))
                for index in indexes:
                    answer(index, error)
                continue
            for index, message in zip(indexes, batch):
                if "_error" in message:  # refused when queued (too large, queue full): no delivery report
                    answer(index, KafkaException(message["_error"]))
        if records:
            all_done.wait(timeout_s)
        return [KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT)) if r is None else r for r in results]

    @contextmanager
    def _consumer(self) -> Iterator[Consumer]:
        try:
            consumer = self._idle.get_nowait()
        except queue.Empty:
            consumer = Consumer(self._consumer_config)
        try:
            yield consumer
        finally:
            if self._closed.is_set() or self._idle.qsize() >= POOL_SIZE:
                consumer.close()
            else:
                self._idle.put(consumer)

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """(offset of the oldest record kept, offset the next record will get)."""
        with self._consumer() as consumer:
            try:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT_S,
                                                           cached=False)
            except KafkaException as exc:
                raise self._unavailable(exc) from exc
        return low, high

    def offset_at(self, topic: str, partition: int, timestamp_ms: int) -> int | None:
        """The offset of the first record at or after `timestamp_ms`; None if there is none yet."""
        with self._consumer() as consumer:
            try:
                [found] = consumer.offsets_for_times([TopicPartition(topic, partition, timestamp_ms)],
                                                     timeout=TIMEOUT_S)
            except KafkaException as exc:
                raise self._unavailable(exc) from exc
        return found.offset if found.offset >= 0 else None

    def read(self, topic: str, partition: int, offset: int, end: int, limit: int, max_bytes: int) -> list[Message]:
        """Up to `limit` records from `offset` on, stopping before `end` (the high watermark read
        before) or once `max_bytes` of values were read."""
        records: list[Message] = []
        size, next_offset = 0, offset
        deadline = time.monotonic() + READ_WAIT_S
        with self._consumer() as consumer:
            consumer.assign([TopicPartition(topic, partition, offset)])
            try:
                while len(records) < limit and next_offset < end and size < max_bytes and time.monotonic() < deadline:
                    for message in consumer.consume(min(limit - len(records), 500), timeout=0.05):
                        if message.error() is not None:
                            raise KafkaException(message.error())
                        if size >= max_bytes:
                            break
                        records.append(message)
                        size += len(message.value() or b"")
                        next_offset = message.offset() + 1
            finally:
                consumer.unassign()
        return records

    def close(self) -> None:
        self._closed.set()
        self._poller.join(timeout=5)
        self._producer.flush(10)
        while not self._idle.empty():
            self._idle.get_nowait().close()
