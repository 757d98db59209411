"""`lakelab lab check X` follows a lab as a student plays it, and `lakelab reset-lab X` puts one
lab back to its start without touching another. Labs A and B are driven step by step on their own
names (topics, tables, prefixes of this run), checking after each step that the report moved;
Labs C and D are checked against the stack's real state and reset on their own names; the reset of
the real default names is driven through the CLI up to its question, and answered no."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from labs.lab_a import check as lab_a_check
from labs.lab_a import reset as lab_a_reset
from labs.lab_b import check as lab_b_check
from labs.lab_b import reset as lab_b_reset
from labs.lab_c import check as lab_c_check
from labs.lab_c import reset as lab_c_reset
from labs.lab_d import check as lab_d_check
from labs.lab_d import reset as lab_d_reset
from labs.lab_d.pipeline import Pipeline
from labs.probes import object_count, topic_records
from labs.report import first_not_done
from lakelab.settings import ROOT, Settings
from producers.kdg import Generator, device_pool
from services.kafka.client import get_client as kafka_admin
from services.s3.client import get_client as s3_client
from tests.clikit import LAKELAB

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]


def lakelab(*args: str, timeout: float = 300, check: bool = True) -> str:
    """Run a `lakelab` command as a student would (in a wide terminal); its output."""
    result = subprocess.run([*LAKELAB, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "COLUMNS": "300"}, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"lakelab {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout + result.stderr


def done(steps) -> list[bool]:
    return [step.done for step in steps]


def create_topics(settings: Settings, *names_and_partitions: tuple[str, int]) -> None:
    client = kafka_admin(settings)
    for future in client.create_topics([NewTopic(n, num_partitions=p, replication_factor=1)
                                        for n, p in names_and_partitions]).values():
        future.result()


def delete_topics(settings: Settings, *names: str) -> None:
    client = kafka_admin(settings)
    existing = set(client.list_topics(timeout=10).topics)
    for future in client.delete_topics([n for n in names if n in existing]).values():
        future.result()


def other_labs_state(settings: Settings) -> dict:
    """What Lab C and Lab D's checks report on the stack's real state: a reset of another lab must
    leave it as it was."""
    return {"C": [(s.done, s.seen) for s in lab_c_check.steps(settings)],
            "D": [(s.done, s.seen) for s in lab_d_check.steps(settings)]}


# ---------------------------------------------------------------- Lab A, step by step


@pytest.fixture(scope="module")
def spark(stack):
    # pyspark starts a JVM: only this module's Lab A test pays for it
    from spark_jobs.lab_a import session

    spark = session(stack, "lab-check-test")
    spark.sparkContext.setLogLevel("ERROR")
    yield spark
    spark.stop()


def test_lab_a_check_follows_the_course_and_reset_starts_it_over(stack: Settings, spark):
    from spark_jobs.lab_a import IotHudiJob, JobConfig  # pyspark: see the fixture

    run = uuid.uuid4().hex[:8]
    names = {"topic": f"labcheck-a-{run}", "table": f"labcheck_a_{run}"}
    dlq = f"labcheck-a-dlq-{run}"
    # the job's default checkpoint and metrics, under the state dir: the reset knows them
    config = JobConfig(topic=names["topic"], dead_letter_topic=dlq, table=names["table"], once=True)
    checkpoint = Path(config.resolved(stack).checkpoint)

    def send(profile: str, first: int, devices: int) -> None:
        Generator(stack.kafka_bootstrap, topic=names["topic"], profile=profile, devices=device_pool(devices, first),
                  device_order="cycle", rate=0, batch=50, seed=first).run(count=devices)

    def stream() -> None:
        IotHudiJob(spark, config, stack).run()

    def report() -> list[bool]:
        return done(lab_a_check.steps(stack, **names))

    create_topics(stack, (names["topic"], 3), (dlq, 1))
    try:
        assert report() == [True] + [False] * 7                      # Tâche 1: stream and bucket
        send("iot_4", 1, 20)
        assert report() == [True, True] + [False] * 6                # Tâche 5: KDG sent 4 readings
        stream()
        assert checkpoint.exists()
        assert report() == [True] * 4 + [False] * 4                  # Tâche 4 and 6: Hudi, Athena
        send("iot_2", 21, 5)
        assert report()[4] and not report()[5]                       # Tâche 7: 2 readings
        send("iot_10", 11, 10)
        assert report()[5] and not report()[6]                       # ... then 10, not in the table yet
        stream()
        assert report() == [True] * 7 + [False]                      # Tâche 7: co2_ppm in Athena
        time.sleep(1.1)                                              # a later Hudi commit time
        send("iot_4", 16, 15)
        stream()
        assert report() == [True] * 8                                # Tâche 8: back to 4 readings

        others = other_labs_state(stack)
        removed = lab_a_reset.reset(stack, names["topic"], dlq, names["table"])
        assert any(f"topic {names['topic']}: 50 records" in line for line in removed)
        steps = lab_a_check.steps(stack, **names)
        assert done(steps) == [True] + [False] * 7
        assert first_not_done(steps).task == "Tâche 5"
        assert object_count(stack, "warehouse", f"{names['table']}/") == 0
        assert not checkpoint.exists()
        assert other_labs_state(stack) == others
    finally:
        lab_a_reset.reset(stack, names["topic"], dlq, names["table"])
        delete_topics(stack, names["topic"], dlq)


# ---------------------------------------------------------------- Lab B, step by step


def test_lab_b_check_follows_the_exercises_and_reset_starts_it_over(stack: Settings, tmp_path: Path):
    run = uuid.uuid4().hex[:8]
    names = {"topic": f"labcheck-b-{run}", "alerts_topic": f"labcheck-b-alerts-{run}",
             "dataset": f"labcheck_b_{run}", "raw_table": f"crawler_labcheck_b_{run}",
             "processed_table": f"processed_labcheck_b_{run}", "alerts_prefix": f"raw-zone/labcheck_b_alerts_{run}/"}
    prefix = f"raw-zone/{names['dataset']}/"
    variables = ["--var", f"raw_table={names['raw_table']}", "--var", f"processed_table={names['processed_table']}",
                 "--var", f"processed_location=s3://datalake/processed-zone/{names['dataset']}/"]

    def report() -> list[bool]:
        return done(lab_b_check.steps(stack, **names))

    create_topics(stack, (names["topic"], 3), (names["alerts_topic"], 1))
    trades_csv = tmp_path / "trades.csv"
    try:
        assert report() == [True] + [False] * 9                                        # Ćw. 1.1-1.2
        lakelab("lab-b", "sample", "--out", str(trades_csv))
        lakelab("lab-b", "replay", str(trades_csv), "--topic", names["topic"], "--batch", "500")
        assert report() == [True, True] + [False] * 8                                  # Ćw. 1.3
        lakelab("lab-b", "deliver", "--topic", names["topic"], "--prefix", prefix, "--buffer-seconds", "2",
                "--idle-exit", "6")
        assert report() == [True] * 3 + [False] * 7                                    # Ćw. 2: Firehose
        lakelab("lab-b", "crawl", f"s3://datalake/{prefix}", "--table", names["raw_table"])
        assert report() == [True] * 5 + [False] * 5                                    # Ćw. 3: crawler, Athena
        lakelab("lab-b", "backfill", "--prefix", prefix, "--datasets", names["dataset"])
        assert report() == [True] * 6 + [False] * 4                                    # Ćw. 4.1: Lambda
        lakelab("sql", "trino/queries/lab_b.sql", "--name", "create_processed", "--name", "repair_processed",
                *variables)
        assert report() == [True] * 8 + [False] * 2                                    # Ćw. 4.2-4.3
        alerts = subprocess.Popen([*LAKELAB, "lab-b", "alerts", "--source-topic", names["topic"],
                                   "--alerts-topic", names["alerts_topic"]], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while not topic_records(stack, names["alerts_topic"]) and time.monotonic() < deadline:
                time.sleep(1)
        finally:
            alerts.send_signal(signal.SIGTERM)
            alerts.wait(60)
        assert report() == [True] * 9 + [False]                                        # Ćw. 5: alerts
        lakelab("lab-b", "deliver", "--topic", names["alerts_topic"], "--prefix", names["alerts_prefix"],
                "--buffer-seconds", "2", "--idle-exit", "6")
        assert report() == [True] * 10                                                 # Ćw. 5h

        others = other_labs_state(stack)
        lab_b_reset.reset(stack, **names)
        steps = lab_b_check.steps(stack, **names)
        assert done(steps) == [True] + [False] * 9
        assert first_not_done(steps).task == "Ćwiczenie 1.3"
        assert object_count(stack, "datalake", f"processed-zone/_manifests/{names['dataset']}/") == 0
        assert other_labs_state(stack) == others
    finally:
        lab_b_reset.reset(stack, **names)
        delete_topics(stack, names["topic"], names["alerts_topic"])


# ---------------------------------------------------------------- Labs C and D: real state, own-name resets


@pytest.mark.parametrize("lab", ["C", "D"])
def test_the_check_of_a_lab_reads_its_real_state(stack: Settings, lab: str):
    out = lakelab("lab", "check", lab, check=False)
    module = {"C": lab_c_check, "D": lab_d_check}[lab]
    steps = module.steps(stack)
    for step in steps:
        assert step.title[:30] in " ".join(out.split())
    pending = first_not_done(steps)
    assert ("all steps done" in out) if pending is None else (f"next: {pending.task}" in " ".join(out.split()))


def test_lab_c_reset_removes_every_version_of_its_uploads(stack: Settings):
    run = uuid.uuid4().hex[:8]
    root = f"tests/labcheck-c-{run}/"
    sales_prefix = f"{root}sales/"
    for rows in ("50", "60"):   # an upload and an overwrite: two versions
        lakelab("lab-c", "ingest", "sales", "--user", "ingest", "--prefix", root, "--rows", rows)
    s3 = s3_client(stack)
    assert lab_c_check.keys_with_history(stack, "raw", sales_prefix) == 1
    others = other_labs_state(stack)
    lab_c_reset.reset(stack, sales_prefix, f"default.labcheck_c_{run}", f"s3a://processed/{root}", other_kinds=())
    assert s3.list_object_versions(Bucket="raw", Prefix=root).get("Versions", []) == []
    steps = lab_c_check.steps(stack, sales_prefix, f"default.labcheck_c_{run}", other_kinds=())
    assert not steps[1].done and not steps[2].done and not steps[6].done
    assert other_labs_state(stack)["D"] == others["D"]


def test_lab_d_check_moves_with_the_pipeline_and_reset_starts_it_over(stack: Settings):
    pipeline = Pipeline(stack)
    names = {"schema": pipeline.schema, "connector": pipeline.connector, "topic_prefix": pipeline.topic_prefix,
             "table_suffix": pipeline.suffix}
    dlq = f"labcheck-d-dlq-{pipeline.run}"
    try:
        assert done(lab_d_check.steps(stack, **names)) == [False] * 5
        pipeline.seed(customers=20, products=10, orders=50)
        assert done(lab_d_check.steps(stack, **names)) == [True] + [False] * 4
        pipeline.register()
        deadline = time.monotonic() + 120
        while not all(done(lab_d_check.steps(stack, **names))[:3]) and time.monotonic() < deadline:
            time.sleep(2)
        assert done(lab_d_check.steps(stack, **names)) == [True, True, True, False, False]
        lab_d_reset.reset(stack, dead_letter_topic=dlq, **names)
        steps = lab_d_check.steps(stack, **names)
        assert done(steps) == [False] * 5 and first_not_done(steps).task == "PostgreSQL"
        assert "not registered" in steps[1].seen
    finally:
        pipeline.cleanup()


# ---------------------------------------------------------------- the real default, through the CLI


def test_reset_lab_through_the_cli_asks_first_and_a_no_touches_nothing(stack: Settings):
    """The reset of the real default names is the one students run; the test must not wipe what a
    student (or `make demo`) put there, so it answers no and checks that nothing moved. The reset
    itself is played on the tests' own names above."""
    # a record in the dead-letter topic (which a reset empties), where no lab job reads it
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap})
    producer.produce(lab_a_check.LAB.dead_letter_topic, value=b'{"test": "reset-lab answered no"}')
    producer.flush(10)
    before = topic_records(stack, lab_a_check.LAB.dead_letter_topic)
    lab_b_before = [(s.done, s.seen) for s in lab_b_check.steps(stack)]
    result = subprocess.run([*LAKELAB, "reset-lab", "A"], cwd=ROOT, input="n\n", capture_output=True, text=True,
                            timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert result.returncode != 0 and "Lab A" in result.stdout + result.stderr
    assert topic_records(stack, lab_a_check.LAB.dead_letter_topic) == before > 0
    assert [(s.done, s.seen) for s in lab_b_check.steps(stack)] == lab_b_before
