"""The Spark client of the stack: a local[*] SparkSession wired to its S3, metastore and Hudi."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lakelab.settings import Settings
from services.base import java17
from services.spark.service import spark_jars


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
        # the keys come from the environment (spark_env): conf values end up on spark-submit's command line
        "spark.hadoop.fs.s3a.aws.credentials.provider": "com.amazonaws.auth.EnvironmentVariableCredentialsProvider",
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "2",
        "spark.driver.memory": settings.spark_driver_memory,
    }


def jvm_env() -> dict[str, str]:
    """What a process that may start Spark needs (no secrets): its JDK, Python and local address."""
    java_home = str(Path(java17()).resolve().parent.parent)
    return {"SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable, "JAVA_HOME": java_home}


def spark_env(settings: Settings) -> dict[str, str]:
    """jvm_env and the S3 keys S3A reads from the environment."""
    return {**jvm_env(), "AWS_ACCESS_KEY_ID": settings.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": settings.s3_secret_key.get_secret_value()}


def get_session(settings: Settings, app_name: str, extra: dict[str, str] | None = None):
    """A local[*] SparkSession wired to the stack (one per process: a second call returns it)."""
    # pyspark takes about a second to import: only code that starts Spark pays for it
    from pyspark.sql import SparkSession

    os.environ.update(spark_env(settings))  # pyspark launches its JVM with this process's environment
    builder = SparkSession.builder.master("local[*]").appName(app_name)
    for key, value in {**spark_conf(settings), **(extra or {})}.items():
        builder = builder.config(key, value)
    return builder.enableHiveSupport().getOrCreate()
