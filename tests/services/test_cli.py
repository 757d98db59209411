import pytest
from typer.testing import CliRunner

from lakelab.cli import app

pytestmark = pytest.mark.unit
runner = CliRunner()


def test_services_lists_every_service_with_its_endpoint():
    result = runner.invoke(app, ["services"])
    assert result.exit_code == 0
    for name in ("postgres", "s3", "kafka", "metastore", "trino", "connect", "api", "nginx"):
        assert name in result.output


def test_logs_of_unknown_service_is_a_clear_error():
    result = runner.invoke(app, ["logs", "kafak"])
    assert result.exit_code == 1
    assert "unknown service 'kafak'" in result.output
