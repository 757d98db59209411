"""Spark (the Glue job stand-in): PyPI pyspark in local mode, with the Hudi bundle,
spark-sql-kafka and S3A jars from Maven Central at the pinned versions."""

from __future__ import annotations

from pathlib import Path

from lakelab.install import maven_artifacts, repo_path
from lakelab.settings import Settings, versions
from services.base import NotReady, Service


def _artifacts() -> list[str]:
    """Extra jars for every Spark job: Hudi, the Kafka source and S3A (at Spark's own Hadoop)."""
    v = versions()["spark"]
    scala, spark = v["scala"], v["version"]
    return [
        f"org.apache.hudi:hudi-spark3.5-bundle_{scala}:{versions()['hudi']['version']}",
        f"org.apache.spark:spark-sql-kafka-0-10_{scala}:{spark}",
        f"org.apache.spark:spark-token-provider-kafka-0-10_{scala}:{spark}",
        "org.apache.kafka:kafka-clients:3.4.1",
        "org.apache.commons:commons-pool2:2.11.1",
        f"org.apache.hadoop:hadoop-aws:{v['hadoop']}",
        f"com.amazonaws:aws-java-sdk-bundle:{v['aws_java_sdk_bundle']}",
    ]


def spark_jars(settings: Settings) -> list[Path]:
    """The extra jars, downloaded on first use."""
    return maven_artifacts(settings, "spark", _artifacts())


def _check(settings: Settings) -> None:
    missing = [c for c in _artifacts() if not repo_path(settings, c).exists()]
    if missing:
        raise NotReady(f"missing jars: {', '.join(missing)}")


SERVICE = Service(
    name="spark",
    summary="Spark local[*] jobs with Hudi, Kafka and S3A jars",
    endpoint=lambda s: "local[*]",
    ports=lambda s: [],
    install=spark_jars,
    command=lambda s: [],
    check=_check,
)
