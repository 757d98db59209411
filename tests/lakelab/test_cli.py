import socket

from typer.testing import CliRunner

from lakelab.cli import app
from lakelab.service import Service
from lakelab.supervisor import StackError, _spawn
from lakelab.settings import Settings

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


def test_port_already_taken_is_reported_with_its_owner(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        service = Service(name="demo", summary="", endpoint=lambda s: "", ports=lambda s: [port],
                          command=lambda s: ["true"], check=lambda s: None)
        try:
            _spawn(Settings(state_dir=tmp_path), service)
        except StackError as exc:
            message = str(exc)
        else:
            raise AssertionError("spawn on a taken port must fail")
    assert f"port already taken: {port}" in message
    assert "demo" in message
