"""`/kdg` through the gateway: templates checked with their line and column, generator jobs that
put real records on a real topic, stopped on request; limits per API key and the API's shutdown
on a private API with small limits."""

from __future__ import annotations

import csv
import json
import time
import uuid

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic

from services.kafka.client import get_client as kafka_admin
from tests.api.apikit import private_api

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]

CSV_TEMPLATE = "{{name.firstName}},{{name.lastName}},{{random.number(70)}},{{internet.ip}}"
JSON_TEMPLATE = '{"device_id": "{{device.id}}", "temperature": {{random.number(70)}}}'


@pytest.fixture
def topic(settings):
    name = f"kdg-test-{uuid.uuid4().hex[:8]}"
    admin = kafka_admin(settings)
    for future in admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)]).values():
        future.result()
    try:
        yield name
    finally:
        for future in admin.delete_topics([name]).values():
            future.result()


def records(settings, topic: str, expected: int) -> list[tuple[bytes | None, bytes]]:
    """(key, value) of the topic's first `expected` records; fails if fewer arrive."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"test-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    found: list[tuple[bytes | None, bytes]] = []
    try:
        while len(found) < expected:
            message = consumer.poll(10)
            assert message is not None, f"{len(found)} of {expected} records in {topic}"
            if message.error() is None:
                found.append((message.key(), message.value()))
    finally:
        consumer.close()
    return found


def written(settings, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"test-{uuid.uuid4()}"})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in (0, 1))
    finally:
        consumer.close()


def wait_job(client: httpx.Client, job_id: str, until, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/kdg/jobs/{job_id}").json()
        if until(job):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} never got there: {job}")


def test_the_shipped_templates_and_placeholders_are_listed(gateway):
    body = gateway.get("/kdg/templates").json()
    by_name = {t["name"]: t for t in body["templates"]}
    assert by_name["company_people"] == {"name": "company_people", "format": "text", "text": CSV_TEMPLATE}
    assert by_name["iot_4"]["format"] == "json"
    assert {"random.number", "name.firstName", "internet.ip", "date.now", "device.id"} <= set(body["placeholders"])


def test_a_template_is_checked_and_rendered(gateway):
    text = gateway.post("/kdg/validate", json={"template": CSV_TEMPLATE}).json()
    assert text["format"] == "text" and text["fields"] is None and len(text["samples"]) == 3
    for sample in text["samples"]:
        first, last, age, ip = next(csv.reader([sample]))
        assert first and last and 0 <= int(age) <= 70 and ip.count(".") == 3
    as_json = gateway.post("/kdg/validate", json={"template": JSON_TEMPLATE}).json()
    assert as_json["format"] == "json" and as_json["fields"] == ["device_id", "temperature"]
    assert json.loads(as_json["samples"][0])["device_id"].startswith("sensor-")


@pytest.mark.parametrize(("template", "line", "column", "message"), [
    ('{\n  "a": {{random.number(5)}}\n  "b": 2\n}', 3, 3, "does not render to JSON: Expecting ',' delimiter"),
    ("{{name.firstName}},\n{{name.noSuchThingAtAll}}", 2, 1, "unknown placeholder {{name.noSuchThingAtAll}}"),
    ("{{name.firstName},{{name.lastName}}", 1, 1, "starts no placeholder"),
])
def test_a_bad_template_is_refused_with_its_line_and_column(gateway, template, line, column, message):
    for response in (gateway.post("/kdg/validate", json={"template": template}),
                     gateway.post("/kdg/jobs", json={"template": template, "stream": "no-such-stream", "rate": 1})):
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["error"] == "bad_template" and body["position"] == {"line": line, "column": column}
        assert message in body["message"] and body["message"].startswith(f"line {line}, column {column}: ")


def test_a_job_sends_csv_lines_as_they_render(gateway, settings, topic):
    started = gateway.post("/kdg/jobs", json={"template": CSV_TEMPLATE, "stream": topic, "rate": 200, "count": 100})
    assert started.status_code == 201, started.text
    job = started.json()
    assert job["state"] == "running" and job["format"] == "text" and job["target_rate"] == 200
    done = wait_job(gateway, job["id"], lambda j: j["state"] != "running")
    assert (done["state"], done["sent"], done["errors"], done["count"]) == ("finished", 100, 0, 100)
    assert done["ended_at"] and done["rate"] == 0
    sent = records(settings, topic, 100)
    assert all(key is None and len(next(csv.reader([value.decode()]))) == 4 for key, value in sent)
    assert written(settings, topic) == 100
    assert job["id"] in [j["id"] for j in gateway.get("/kdg/jobs").json()["jobs"]]


def test_a_json_job_keys_records_by_device(gateway, settings, topic):
    job = gateway.post("/kdg/jobs", json={"template": JSON_TEMPLATE, "stream": topic, "rate": 100, "count": 30}).json()
    assert wait_job(gateway, job["id"], lambda j: j["state"] != "running")["sent"] == 30
    for key, value in records(settings, topic, 30):
        assert key.decode() == json.loads(value)["device_id"]


def test_a_running_job_reports_its_rate_and_stops_on_request(gateway, settings, topic):
    job = gateway.post("/kdg/jobs", json={"template": CSV_TEMPLATE, "stream": topic, "rate": 20}).json()
    running = wait_job(gateway, job["id"], lambda j: j["sent"] >= 20)
    assert running["state"] == "running" and 5 <= running["rate"] <= 40 and running["count"] is None
    stopped = gateway.post(f"/kdg/jobs/{job['id']}/stop")
    assert stopped.status_code == 200, stopped.text
    final = stopped.json()
    assert final["state"] == "stopped" and final["sent"] >= 20
    time.sleep(1.5)
    assert gateway.get(f"/kdg/jobs/{job['id']}").json()["sent"] == final["sent"] == written(settings, topic)


def test_requests_a_job_cannot_serve_are_refused_with_the_cause(gateway, settings, topic):
    unknown = gateway.post("/kdg/jobs", json={"template": CSV_TEMPLATE, "stream": "no-such-stream-here", "rate": 1})
    assert unknown.status_code == 404 and topic in unknown.json()["message"]
    too_fast = gateway.post("/kdg/jobs", json={"template": CSV_TEMPLATE, "stream": topic,
                                               "rate": settings.api_kdg_max_rate + 1})
    assert too_fast.status_code == 422 and "LAKELAB_API_KDG_MAX_RATE" in too_fast.json()["message"]
    assert gateway.get("/kdg/jobs/0123456789abcdef").status_code == 404
    assert gateway.post("/kdg/jobs/0123456789abcdef/stop").status_code == 404
    assert written(settings, topic) == 0
    for path in ("/kdg/templates", "/kdg/streams", "/kdg/jobs"):
        assert httpx.get(f"{settings.gateway_url}{path}", timeout=10).status_code == 401


def test_streams_are_the_topics_without_internal_ones(gateway, topic):
    streams = {s["name"]: s["partitions"] for s in gateway.get("/kdg/streams").json()}
    assert streams[topic] == 2 and "iot-events" in streams
    assert not [name for name in streams if name.startswith("_")]


def test_jobs_are_bounded_per_key_and_stop_with_the_api(tmp_path, settings, topic):
    with private_api(tmp_path, api_keys="key-one,key-two", api_kdg_max_jobs_per_key="1") as url:
        one = httpx.Client(base_url=url, headers={"X-API-Key": "key-one"}, timeout=30)
        two = httpx.Client(base_url=url, headers={"X-API-Key": "key-two"}, timeout=30)
        job = one.post("/kdg/jobs", json={"template": CSV_TEMPLATE, "stream": topic, "rate": 20})
        assert job.status_code == 201, job.text
        job_id = job.json()["id"]
        second = one.post("/kdg/jobs", json={"template": CSV_TEMPLATE, "stream": topic, "rate": 20})
        assert second.status_code == 409 and second.json()["error"] == "too_many_jobs"
        assert job_id in second.json()["message"]
        assert two.get(f"/kdg/jobs/{job_id}").status_code == 404, "another key's job is not visible"
        assert two.get("/kdg/jobs").json() == {"jobs": [], "max_jobs": 1, "max_rate": settings.api_kdg_max_rate}
        assert two.post("/kdg/jobs", json={"template": CSV_TEMPLATE, "stream": topic, "rate": 20}).status_code == 201
        wait_job(one, job_id, lambda j: j["sent"] > 0)
    # the API stopped: its jobs stopped with it
    time.sleep(0.5)
    after_shutdown = written(settings, topic)
    time.sleep(1.5)
    assert written(settings, topic) == after_shutdown > 0
