"""JupyterLab as an optional service: `lakelab up` leaves it out, `lakelab up jupyter` starts it on
127.0.0.1 behind the env file's token, and a notebook kernel on it reaches the lake (S3, Trino,
Spark with the metastore)."""

from __future__ import annotations

import json
import secrets
import uuid

import httpx
import psutil
import pytest
import websocket
from pydantic import SecretStr

from lakelab.settings import Settings
from services import compose, supervisor
from services.jupyter.service import CONFIG_FILE, SERVICE as JUPYTER


@pytest.mark.unit
def test_a_plain_up_leaves_optional_services_out_and_a_named_one_in():
    assert "jupyter" not in {s.name for s in supervisor._selected(None)}
    assert [s.name for s in supervisor._selected(["jupyter"])] == ["jupyter"]
    assert JUPYTER.optional


@pytest.mark.unit
def test_the_token_is_on_no_command_line_and_in_no_file(tmp_path):
    token = secrets.token_urlsafe(24)
    settings = Settings(state_dir=tmp_path, jupyter_token=SecretStr(token))
    JUPYTER.prepare(settings)
    assert token not in " ".join(JUPYTER.command(settings))
    assert token not in CONFIG_FILE.read_text()
    assert all(token not in path.read_text() for path in tmp_path.rglob("*") if path.is_file())
    assert JUPYTER.env(settings)["JUPYTER_TOKEN"] == token


@pytest.mark.unit
def test_without_a_token_it_refuses_to_start_and_says_how_to_set_one(tmp_path):
    with pytest.raises(Exception, match="LAKELAB_JUPYTER_TOKEN"):
        JUPYTER.install(Settings(state_dir=tmp_path, jupyter_token=SecretStr("")))


@pytest.fixture(scope="module")
def jupyter(stack: Settings):
    """The running JupyterLab (natively a process, in compose mode the `notebooks` profile's
    container), started here and stopped after when it was not running. Its token is the env
    file's, generated like every secret."""
    if stack.mode == "compose":
        started_here = "jupyter" not in {c.service for c in compose.status_of(stack) if c.state == "running"}
        compose.up(stack, ["jupyter"])
        yield stack
        if started_here:
            compose.down(stack, ["jupyter"])
        return
    started_here = supervisor.running_pid(stack, "jupyter") is None
    supervisor.up(stack, ["jupyter"])
    yield stack
    if started_here:
        supervisor.down(stack, ["jupyter"])


def run_in_kernel(settings: Settings, code: str, timeout: float = 240) -> str:
    """Start a kernel through the server's REST API, run `code` over its websocket, return stdout."""
    headers = {"Authorization": f"token {settings.jupyter_token.get_secret_value()}"}
    with httpx.Client(base_url=settings.jupyter_url, headers=headers, timeout=30) as http:
        kernel = http.post("/api/kernels", json={"name": "python3"}).raise_for_status().json()
        try:
            ws_url = settings.jupyter_url.replace("http", "ws", 1) + f"/api/kernels/{kernel['id']}/channels"
            channel = websocket.create_connection(ws_url, header=[f"Authorization: {headers['Authorization']}"],
                                                  timeout=timeout)
            msg_id = uuid.uuid4().hex
            channel.send(json.dumps({
                "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                           "session": uuid.uuid4().hex, "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "shell",
                "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                            "allow_stdin": False}}))
            out, error = [], None
            while True:
                message = json.loads(channel.recv())
                if message["parent_header"].get("msg_id") != msg_id:
                    continue
                if message["msg_type"] == "stream":
                    out.append(message["content"]["text"])
                elif message["msg_type"] == "error":
                    error = "\n".join(message["content"]["traceback"])
                elif message["msg_type"] == "execute_reply":
                    break
            channel.close()
            assert error is None, error
            return "".join(out)
        finally:
            http.delete(f"/api/kernels/{kernel['id']}")


def _server_processes(settings: Settings) -> list[psutil.Process]:
    """The server's process tree: natively the supervisor's child, in compose mode its container's."""
    pid = compose.main_pid(settings, "jupyter") if settings.mode == "compose" else \
        supervisor.running_pid(settings, "jupyter")
    process = psutil.Process(pid)
    return [process, *process.children(recursive=True)]


@pytest.mark.integration
def test_it_listens_on_localhost_only_and_refuses_requests_without_the_token(jupyter: Settings):
    def listens(member: psutil.Process) -> list:
        try:
            return [c.laddr for c in member.net_connections("tcp") if c.status == psutil.CONN_LISTEN]
        except psutil.NoSuchProcess:   # a short-lived helper the server started and that is gone
            return []

    if jupyter.mode == "compose":  # inside its container on every interface; on the host 127.0.0.1 only
        assert {ip for ip, _ in compose.port_bindings(jupyter, "jupyter")} == {"127.0.0.1"}
        assert {c.service: c for c in compose.status_of(jupyter)}["jupyter"].healthy
    else:
        listening = [address for member in _server_processes(jupyter) for address in listens(member)]
        assert listening and {address.ip for address in listening} == {"127.0.0.1"}
        status = {s.name: s for s in supervisor.status(jupyter)}["jupyter"]
        assert status.healthy and status.pid == supervisor.running_pid(jupyter, "jupyter")
    assert httpx.get(f"{jupyter.jupyter_url}/api/kernels", timeout=10).status_code == 403
    wrong = {"Authorization": "token not-the-token-of-this-server"}
    assert httpx.get(f"{jupyter.jupyter_url}/api/kernels", headers=wrong, timeout=10).status_code == 403
    right = {"Authorization": f"token {jupyter.jupyter_token.get_secret_value()}"}
    assert httpx.get(f"{jupyter.jupyter_url}/api/kernels", headers=right, timeout=10).status_code == 200


@pytest.mark.integration
def test_a_notebook_kernel_reaches_s3_trino_and_spark_with_the_metastore(jupyter: Settings):
    output = run_in_kernel(jupyter, """
import boto3, pandas, matplotlib, trino
from lakelab.settings import get_settings
from services.s3.client import get_client as s3
from services.trino.client import query
from services.spark.client import get_session
settings = get_settings()
print("buckets:", sorted(b["Name"] for b in s3(settings).list_buckets()["Buckets"]))
print("trino:", query(settings, "SELECT 40 + 2")[0][0])
spark = get_session(settings, "jupyter-test")
print("spark databases:", sorted(r[0] for r in spark.sql("SHOW DATABASES").collect()))
print("hudi:", spark.conf.get("spark.sql.extensions"))
spark.stop()
""")
    assert "'datalake'" in output and "'warehouse'" in output
    assert "trino: 42" in output
    assert "'lab_b'" in output and "'cdc'" in output
    assert "HoodieSparkSessionExtension" in output
