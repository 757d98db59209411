import httpx
import pytest

from services.connect.service import DEBEZIUM_POSTGRES, connector_plugins

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]


def test_connect_offers_debezium_postgres(settings):
    assert DEBEZIUM_POSTGRES in connector_plugins(settings)


def test_nginx_forwards_to_the_api(settings):
    through_gateway = httpx.get(f"{settings.gateway_url}/health", timeout=5)
    assert through_gateway.status_code == 200
    assert through_gateway.json()["status"] == "ok"
    assert through_gateway.headers["server"].startswith("nginx")
