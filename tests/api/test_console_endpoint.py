"""`/console` through the gateway: the services' health, a bucket's folders and objects with their
versions, a topic's offsets and last minute, all on state the test makes."""

from __future__ import annotations

import httpx
import pytest

from services import compose

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]

SERVICES = {"s3", "kafka", "postgres", "metastore", "trino", "connect", "nginx", "api"}


def test_every_service_is_listed_up_with_its_endpoint(gateway, settings):
    services = {s["name"]: s for s in gateway.get("/console/services").json()}
    assert set(services) == SERVICES
    assert all(s["status"] == "up" and s["detail"] for s in services.values()), services
    # the endpoint the API itself uses: in compose mode its container's, inside the network
    s3_endpoint = (compose.container_environment(settings, "api")["LAKELAB_S3_ENDPOINT"]
                   if settings.mode == "compose" else settings.s3_endpoint)
    assert services["s3"]["endpoint"] == s3_endpoint and services["s3"]["stands_for"] == "Amazon S3"
    assert services["trino"]["detail"].startswith("Trino ")


def test_a_folder_lists_its_objects_and_their_versions(gateway, lake_objects):
    top = gateway.get("/console/buckets/raw/objects", params={"prefix": lake_objects}).json()
    assert top["versioning"] == "Enabled" and top["truncated"] is False
    assert top["folders"] == [{"prefix": f"{lake_objects}a/", "objects": 2, "bytes": 5, "versions": 3}]
    (deleted,) = top["objects"]
    assert (deleted["key"], deleted["size"], deleted["versions"], deleted["deleted"]) == \
        (f"{lake_objects}b.csv", None, 2, True)
    inside = gateway.get("/console/buckets/raw/objects", params={"prefix": f"{lake_objects}a/"}).json()
    assert [(o["key"].rsplit("/", 1)[1], o["size"], o["versions"], o["deleted"]) for o in inside["objects"]] == \
        [("x.csv", 2, 2, False), ("y.csv", 3, 1, False)]
    plain = gateway.get("/console/buckets/datalake/objects", params={"prefix": lake_objects}).json()
    assert plain["versioning"] == "Disabled"
    assert [(o["size"], o["versions"]) for o in plain["objects"]] == [(3, 1)]


def test_buckets_show_versioning_and_counts(gateway, lake_objects):
    buckets = {b["name"]: b for b in gateway.get("/console/buckets").json()}
    assert {"raw", "processed", "datalake", "warehouse"} <= set(buckets)
    raw = buckets["raw"]
    assert raw["versioning"] == "Enabled" and raw["objects"] >= 2 and raw["versions"] >= raw["objects"] + 3
    assert buckets["datalake"]["versioning"] == "Disabled" and buckets["datalake"]["objects"] >= 1


def test_unknown_bucket_is_404_and_names_are_validated(gateway):
    missing = gateway.get("/console/buckets/no-such-bucket-here/objects")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert gateway.get("/console/buckets/Bad_Name!/objects").status_code == 422


def test_a_topic_shows_its_offsets_and_last_minute(gateway, busy_topic):
    topics = {t["name"]: t for t in gateway.get("/console/topics").json()}
    topic = topics[busy_topic]
    assert (topic["messages"], topic["latest"], topic["last_minute"], topic["rate"]) == (31, 31, 30, 0.5)
    assert [(p["partition"], p["earliest"], p["latest"], p["last_minute"]) for p in topic["partitions"]] == \
        [(0, 0, 16, 15), (1, 0, 15, 15)]
    assert not [name for name in topics if name.startswith("_")]


def test_the_console_needs_a_key(settings):
    for path in ("/console/services", "/console/buckets", "/console/buckets/raw/objects", "/console/topics"):
        assert httpx.get(f"{settings.gateway_url}{path}", timeout=10).status_code == 401
