import pytest

from lakelab.install import _pom

pytestmark = pytest.mark.unit


def test_generated_pom_lists_each_artifact_with_its_type():
    pom = _pom(["org.apache.kafka:kafka_2.13:4.1.1", "io.trino:trino-server:476:tar.gz"])
    assert "<artifactId>kafka_2.13</artifactId><version>4.1.1</version></dependency>" in pom
    assert "<version>476</version><type>tar.gz</type>" in pom
