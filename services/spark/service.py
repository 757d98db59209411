"""Spark (the Glue job stand-in): PyPI pyspark in local mode, with the Hudi bundle,
spark-sql-kafka and S3A jars from Maven Central at the pinned versions."""

from __future__ import annotations

import os
from pathlib import Path

from lakelab.install import maven_artifacts, repo_path
from lakelab.service import NotReady, Service, java17
from lakelab.settings import Settings, versions


def pyspark_jars_dir() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


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


def spark_conf(settings: Settings) -> dict[str, str]:
    """Configuration shared by every job: S3A on the stack's S3, Hive support on its metastore,
    Hudi's SQL extensions."""
    return {
        "spark.jars": ",".join(map(str, spark_jars(settings))),
        "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
        "spark.sql.extensions": "org.apache.spark.sql.hudi.HoodieSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.hudi.catalog.HoodieCatalog",
        "spark.kryo.registrator": "org.apache.spark.HoodieSparkKryoRegistrar",
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.hive.metastore.uris": settings.metastore_uri,
        "spark.hadoop.fs.s3a.endpoint": settings.s3_endpoint,
        "spark.hadoop.fs.s3a.endpoint.region": settings.s3_region,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.access.key": settings.s3_access_key,
        "spark.hadoop.fs.s3a.secret.key": settings.s3_secret_key.get_secret_value(),
        "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "2",
        "spark.driver.memory": settings.spark_driver_memory,
    }


def spark_env(settings: Settings) -> dict[str, str]:
    import sys

    java_home = str(Path(java17()).resolve().parent.parent)
    return {"SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable, "JAVA_HOME": java_home}


def session(settings: Settings, app_name: str, extra: dict[str, str] | None = None):
    """A local[*] SparkSession wired to the stack."""
    from pyspark.sql import SparkSession

    os.environ.update(spark_env(settings))
    builder = SparkSession.builder.master("local[*]").appName(app_name)
    for key, value in {**spark_conf(settings), **(extra or {})}.items():
        builder = builder.config(key, value)
    return builder.enableHiveSupport().getOrCreate()


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
