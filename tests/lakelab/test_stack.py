from pathlib import Path

import pytest

from lakelab.install import _pom
from lakelab.resources import load_resources
from lakelab.service import render
from lakelab.stack import SERVICES, by_name, start_waves


def test_every_service_starts_after_its_dependencies():
    position = {}
    for index, wave in enumerate(start_waves(SERVICES)):
        for service in wave:
            position[service.name] = index
    for service in SERVICES:
        for dependency in service.depends_on:
            assert position[dependency] < position[service.name], (service.name, dependency)


def test_unknown_service_is_named_in_the_error():
    with pytest.raises(KeyError, match="unknown service 'kafak'"):
        by_name("kafak")


def test_declared_resources_cover_the_labs():
    resources = load_resources()
    assert {"raw", "processed", "datalake"} <= {b.name for b in resources.buckets}
    datalake = next(b for b in resources.buckets if b.name == "datalake")
    assert {"raw-zone/", "processed-zone/"} <= set(datalake.prefixes)
    assert "metastore" in resources.postgres_databases


def test_render_fills_our_placeholders_and_keeps_nginx_variables(tmp_path: Path):
    template = tmp_path / "t.conf"
    template.write_text("server ${UPSTREAM}; proxy_set_header Host $host;")
    out = render(template, tmp_path / "out.conf", {"UPSTREAM": "127.0.0.1:8000"})
    assert out.read_text() == "server 127.0.0.1:8000; proxy_set_header Host $host;"


def test_generated_pom_lists_each_artifact_with_its_type():
    pom = _pom(["org.apache.kafka:kafka_2.13:4.1.1", "io.trino:trino-server:476:tar.gz"])
    assert "<artifactId>kafka_2.13</artifactId><version>4.1.1</version></dependency>" in pom
    assert "<version>476</version><type>tar.gz</type>" in pom
