"""Kafka (the Kinesis stand-in): Apache Kafka in KRaft mode, jars from Maven Central."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import NewTopic

from lakelab.install import maven_classpath
from lakelab.resources import Resources
from lakelab.settings import Settings, versions
from services.base import (
    C1_ONLY,
    NotReady,
    Service,
    class_data_sharing,
    java17,
    java_temp_dir,
    project_file,
    render,
    run_setup_tool,
)
from services.kafka.client import get_client

HERE = Path(__file__).parent


def artifacts() -> list[str]:
    v = versions()["kafka"]
    return [
        f"org.apache.kafka:kafka_{v['scala']}:{v['version']}",
        "org.apache.logging.log4j:log4j-core:2.24.3",
        "org.apache.logging.log4j:log4j-slf4j-impl:2.24.3",
        "com.fasterxml.jackson.dataformat:jackson-dataformat-yaml:2.19.0",
    ]


def classpath(settings: Settings) -> str:
    return ":".join(map(str, maven_classpath(settings, "kafka", artifacts())))


def java_command(settings: Settings, name: str, classpath: str, heap: str, main: list[str]) -> list[str]:
    """A Kafka-family JVM (broker, storage tool, Connect worker) with Kafka's logging setup. The
    heap starts small and grows to `heap`: a heap fixed at its maximum (Kafka's production advice)
    is resident whether used or not, and on a laptop the lab's jobs need that memory."""
    java = java17()
    return [
        java, "-Xms64m", f"-Xmx{heap}", "-XX:+UseG1GC", C1_ONLY, "-Djava.awt.headless=true",
        *class_data_sharing(settings, name, java, classpath, main[0]), java_temp_dir(settings, name),
        f"-Dlog4j2.configurationFile={HERE / 'log4j2.yaml'}", "-cp", classpath, *main,
    ]


def _properties(settings: Settings) -> Path:
    return settings.run_dir("kafka") / "server.properties"


def listeners(settings: Settings) -> tuple[str, str]:
    """(listeners, advertised listeners): the clients' listener on the bind host, advertised as
    `kafka_bootstrap`; with `kafka_external_bootstrap` (compose: the host's address of the
    published port), a second one on that port, advertised as that address."""
    bound = [f"PLAINTEXT://{settings.bind_host}:{settings.port_of(settings.kafka_bootstrap)}"]
    advertised = [f"PLAINTEXT://{settings.kafka_bootstrap}"]
    if settings.kafka_external_bootstrap:
        bound.append(f"EXTERNAL://{settings.bind_host}:{settings.port_of(settings.kafka_external_bootstrap)}")
        advertised.append(f"EXTERNAL://{settings.kafka_external_bootstrap}")
    return ",".join(bound), ",".join(advertised)


def _prepare(settings: Settings) -> None:
    data = settings.data_dir("kafka")
    bound, advertised = listeners(settings)
    render(HERE / "server.properties", _properties(settings), {
        "KAFKA_LISTENERS": bound,
        "KAFKA_ADVERTISED_LISTENERS": advertised,
        "KAFKA_CONTROLLER_PORT": str(settings.kafka_controller_port),
        "KAFKA_DATA_DIR": str(data),
    })
    if not (data / "meta.properties").exists():
        run_setup_tool(
            java_command(settings, "kafka-storage", classpath(settings), "256m",
                         ["kafka.tools.StorageTool", "format", "-t", new_cluster_id(),
                          "-c", str(_properties(settings))]),
            f"Kafka's storage format of {data}", cwd=project_file(),
        )


def new_cluster_id() -> str:
    """A random cluster id as Kafka's own `kafka-storage random-uuid` makes one: a UUID in unpadded
    base64url that never starts with "-", which the storage tool would take for an option and refuse
    ("argument --cluster-id/-t: expected one argument"; 1 fresh start in 64 failed so)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _check(settings: Settings) -> None:
    try:
        metadata = get_client(settings).list_topics(timeout=3)
    except KafkaException as exc:
        raise NotReady(f"no metadata from Kafka: {exc}") from exc
    if not metadata.brokers:
        raise NotReady("Kafka answered with no brokers")


def _bootstrap(settings: Settings, declared: Resources) -> None:
    client = get_client(settings)
    existing = set(client.list_topics(timeout=10).topics)
    wanted = [NewTopic(t.name, num_partitions=t.partitions, replication_factor=1)
              for t in declared.topics if t.name not in existing]
    if wanted:
        for future in client.create_topics(wanted).values():
            future.result()


SERVICE = Service(
    name="kafka",
    summary="Apache Kafka, KRaft",
    endpoint=lambda s: s.kafka_bootstrap,
    ports=lambda s: [s.port_of(s.kafka_bootstrap), s.kafka_controller_port],
    install=classpath,
    prepare=_prepare,
    command=lambda s: java_command(s, "kafka", classpath(s), "384m", ["kafka.Kafka", str(_properties(s))]),
    check=_check,
    bootstrap=_bootstrap,
)
