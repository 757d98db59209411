"""The Spark client of the stack: a SparkSession wired to its S3, metastore and Hudi, on the
settings' master (local[*], or a standalone cluster's)."""

from __future__ import annotations

import atexit
import os
import shutil
from importlib.util import find_spec
from pathlib import Path

import psutil

from lakelab.settings import Settings
from services.base import class_data_sharing_for_any_process, java17
from services.spark.service import own_address, spark_env, spark_jars


def spark_conf(settings: Settings) -> dict[str, str]:
    """Configuration shared by every job: S3A on the stack's S3, Hive support on its metastore,
    Hudi's SQL extensions."""
    jars = spark_jars(settings)
    archive = driver_class_archive(settings, jars)
    temp = driver_temp_dir(settings)
    return {
        "spark.jars": ",".join(map(str, jars)),
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
        "spark.driver.bindAddress": settings.bind_host,
        "spark.driver.host": own_address(settings),
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "2",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.executor.memory": settings.spark_executor_memory,
        # Spark's block files, Hive's session resources, S3A's upload buffers and the native
        # libraries snappy and lz4 unpack: all default to /tmp, where a killed driver leaves them
        "spark.local.dir": str(temp),
        "spark.hadoop.hadoop.tmp.dir": str(temp),
        "spark.driver.extraJavaOptions": " ".join([*archive, f"-Djava.io.tmpdir={temp}"]),
    }


def driver_temp_dir(settings: Settings) -> Path:
    """This process's Spark driver's temporary folder, one per process under the state folder,
    removed when the process exits; those of drivers that are gone without (killed) are removed
    first."""
    drivers = settings.temp_dir("spark-driver")
    for folder in drivers.glob("*"):
        if folder.name.isdigit() and not psutil.pid_exists(int(folder.name)):
            shutil.rmtree(folder, ignore_errors=True)
    own = drivers / str(os.getpid())
    settings.make_state_dir()
    own.mkdir(parents=True, exist_ok=True, mode=0o700)
    atexit.register(shutil.rmtree, own, ignore_errors=True)
    return own


def driver_class_archive(settings: Settings, jars: list[Path]) -> list[str]:
    """The driver JVM's flags to load Spark's, Hudi's, S3A's and Hive's classes from an archive of
    them made by an earlier driver: a session and its first Hudi commit 0.75x the time, the
    driver's CPU 0.74x (docs/bench.md). Keyed by pyspark's jars (each checkout's venv has its own
    copy, and the archive names their paths and install times) and the extra jars."""
    spark_home = Path(find_spec("pyspark").origin).parent  # without importing pyspark (a second)
    classpath = ":".join(map(str, [*sorted((spark_home / "jars").glob("*.jar")), *jars]))
    return class_data_sharing_for_any_process(settings, "spark-driver", java17(), classpath,
                                              "org.apache.spark.deploy.SparkSubmit")


def get_session(settings: Settings, app_name: str, extra: dict[str, str] | None = None):
    """A SparkSession wired to the stack, on the settings' master (one per process: a second call
    returns it)."""
    # pyspark takes about a second to import: only code that starts Spark pays for it
    from pyspark.sql import SparkSession

    os.environ.update(spark_env(settings))  # pyspark launches its JVM with this process's environment
    builder = SparkSession.builder.master(settings.spark_master).appName(app_name)
    for key, value in {**spark_conf(settings), **(extra or {})}.items():
        builder = builder.config(key, value)
    return builder.enableHiveSupport().getOrCreate()
