"""Spark (the Glue job stand-in): PyPI pyspark, with the Hudi bundle, spark-sql-kafka and S3A
jars from Maven Central at the pinned versions. Jobs run in local mode; compose's `scale` profile
also runs a standalone cluster (a master and a worker, the same pyspark) for jobs that ask for it
(`spark_master`)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from lakelab.install import maven_artifacts, repo_path
from lakelab.settings import Settings, versions
from services.base import NotReady, Service, http_get, java17, venv_bin


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


def own_address(settings: Settings) -> str:
    """How a cluster's other processes reach this one: loopback natively, its host name in a container."""
    return settings.bind_host if settings.listens_on_loopback else socket.gethostname()


def jvm_env(settings: Settings) -> dict[str, str]:
    """What a process that may start Spark needs, without secrets: Java 17, this Python for its
    workers, and its local address."""
    java_home = str(Path(java17()).resolve().parent.parent)
    # natively every Spark process stays on loopback; in a container Spark binds its host name's address
    local_ip = {"SPARK_LOCAL_IP": settings.bind_host} if settings.listens_on_loopback else {}
    # fewer glibc malloc arenas: less native memory outside the heap (docs/bench.md, memory)
    return {**local_ip, "PYSPARK_PYTHON": sys.executable, "JAVA_HOME": java_home, "MALLOC_ARENA_MAX": "2"}


def spark_env(settings: Settings) -> dict[str, str]:
    """A Spark JVM's environment: jvm_env and the S3 keys S3A reads from it (a standalone worker's
    executors inherit them from the worker)."""
    return {**jvm_env(settings), "AWS_ACCESS_KEY_ID": settings.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": settings.s3_secret_key.get_secret_value()}


def _daemon_env(settings: Settings) -> dict[str, str]:
    return {**spark_env(settings), "SPARK_DAEMON_MEMORY": "256m",
            "SPARK_WORKER_DIR": str(settings.data_dir("spark-worker"))}


def _master_state(settings: Settings) -> dict:
    """The standalone master's own account of itself and its workers (its web UI's JSON)."""
    url = f"http://{settings.host_of(settings.spark_standalone_url)}:{settings.spark_master_ui_port}/json/"
    response = http_get(url, "Spark master")
    if response.status_code != 200:
        raise NotReady(f"Spark master answered {response.status_code}")
    return response.json()


def _check_master(settings: Settings) -> None:
    if (status := _master_state(settings).get("status")) != "ALIVE":
        raise NotReady(f"Spark master is {status}")


def _check_worker(settings: Settings) -> None:
    workers = _master_state(settings).get("workers", [])
    if not any(w["host"] == own_address(settings) and w["state"] == "ALIVE" for w in workers):
        raise NotReady(f"the Spark master has no live worker on {own_address(settings)}: {workers}")


MASTER = Service(
    name="spark-master",
    summary="Spark standalone master",
    endpoint=lambda s: s.spark_standalone_url,
    ports=lambda s: [s.port_of(s.spark_standalone_url), s.spark_master_ui_port],
    install=spark_jars,
    command=lambda s: [venv_bin("spark-class"), "org.apache.spark.deploy.master.Master",
                       "--host", s.host_of(s.spark_standalone_url), "--port", str(s.port_of(s.spark_standalone_url)),
                       "--webui-port", str(s.spark_master_ui_port)],
    check=_check_master,
    env=_daemon_env,
)

WORKER = Service(
    name="spark-worker",
    summary="Spark standalone worker: runs the executors (and drivers) of cluster jobs",
    endpoint=lambda s: f"http://{own_address(s)}:{s.spark_worker_ui_port}",
    ports=lambda s: [s.spark_worker_ui_port],
    install=spark_jars,
    command=lambda s: [venv_bin("spark-class"), "org.apache.spark.deploy.worker.Worker",
                       "--host", own_address(s), "--cores", str(s.spark_worker_cores),
                       "--memory", s.spark_worker_memory, "--webui-port", str(s.spark_worker_ui_port),
                       s.spark_standalone_url],
    check=_check_worker,
    depends_on=("spark-master",),
    env=_daemon_env,
    secrets=("s3_secret_key",),  # its executors write the lake
)
