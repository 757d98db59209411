import os
import shutil

import pytest

from lakelab.install import _pom, maven_classpath
from lakelab.settings import Settings, versions
from services.connect.service import SERVICE as CONNECT
from services.connect.service import plugin_dir

pytestmark = pytest.mark.unit


def test_generated_pom_lists_each_artifact_with_its_type():
    pom = _pom(["org.apache.kafka:kafka_2.13:4.1.1", "io.trino:trino-server:476:tar.gz"])
    assert "<artifactId>kafka_2.13</artifactId><version>4.1.1</version></dependency>" in pom
    assert "<version>476</version><type>tar.gz</type>" in pom


def test_a_download_cache_restored_at_another_path_is_used_as_it_is(tmp_path, monkeypatch):
    """A CI cache restored under another home, a cache copied to another user or machine: its Maven
    resolutions and Debezium's plugin folder still point into it, so nothing is resolved again."""
    settings = Settings()
    CONNECT.install(settings)  # Connect's and Debezium's jars, resolved, and the plugin's links
    moved = tmp_path / "cache"
    moved.mkdir()
    shutil.copytree(settings.cache_dir / "maven", moved / "maven")
    shutil.copytree(plugin_dir(settings), moved / "connect-plugins", symlinks=True)
    (moved / "m2").symlink_to(settings.cache_dir / "m2")  # the jars themselves (GBs): linked, not copied
    monkeypatch.setenv("PATH", str(tmp_path))  # no `mvn`: resolving again would fail
    at_new_path = Settings(cache_dir=moved)

    connector = f"io.debezium:debezium-connector-postgres:{versions()['debezium']['version']}"
    jars = maven_classpath(at_new_path, "debezium-postgres", [connector])
    assert len(jars) > 5
    assert all(jar.is_relative_to(moved) and jar.exists() for jar in jars)
    links = list((moved / "connect-plugins").glob("debezium-connector-postgres-*/*.jar"))
    assert len(links) > 5
    assert all(link.exists() and not os.path.isabs(os.readlink(link)) for link in links)
