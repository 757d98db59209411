"""The connector files of Kafka Connect's client, without the stack."""

import pytest

from services.connect import client as connectors

pytestmark = pytest.mark.unit


def test_connector_file_with_overrides():
    name, config = connectors.load("shop-postgres", {"topic.prefix": "t1", "slot.name": "t1"}, name="run-1")
    assert name == "run-1"
    assert config["plugin.name"] == "pgoutput" and config["topic.prefix"] == "t1" and config["slot.name"] == "t1"
    assert config["database.password"] == "${env:LAKELAB_PG_PASSWORD}"  # resolved by the Connect worker
    assert config["value.converter.schemas.enable"] == "true"
    assert connectors.spec_path("shop-postgres.json") == connectors.spec_path("shop-postgres")
    with pytest.raises(FileNotFoundError, match="shop-postgres"):
        connectors.load("nope")
