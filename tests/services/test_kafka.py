import pytest
from confluent_kafka import Consumer, Producer

from lakelab.resources import load_resources
from services.kafka.client import get_client as admin

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]


def test_declared_topics_exist_with_their_partitions(settings):
    topics = admin(settings).list_topics(timeout=10).topics
    for topic in load_resources().topics:
        assert topic.name in topics
        assert len(topics[topic.name].partitions) == topic.partitions


def test_produce_then_consume_in_order(settings, unique):
    topic = f"test-roundtrip-{unique}"
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    sent = [f"event-{i}".encode() for i in range(20)]
    for value in sent:
        producer.produce(topic, key=b"device-1", value=value)
    assert producer.flush(15) == 0

    consumer = Consumer({
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": f"test-{unique}",
        "auto.offset.reset": "earliest",
    })
    consumer.subscribe([topic])
    received = []
    try:
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                received.append(message.value())
            if len(received) == len(sent):
                break
    finally:
        consumer.close()
    assert received == sent
