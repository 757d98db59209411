"""The Kafka client of the stack (the Kinesis stand-in): its bootstrap address and an admin client."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient

from lakelab.settings import Settings


def get_bootstrap_server(settings: Settings) -> str:
    return settings.kafka_bootstrap


def get_client(settings: Settings) -> AdminClient:
    """An admin client (topics, offsets, groups); producers and consumers take get_bootstrap_server()."""
    # log_level 0: connection-refused noise while the broker starts is reported by readiness instead
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "socket.timeout.ms": 3000, "log_level": 0})
