"""Probes of the stack's credentials: nothing shipped with the project works as a secret, a start
with a shipped example is refused, each process holds only the secrets it uses (none on a command
line), and state, logs and secrets are private to the user who runs the stack."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from botocore.exceptions import ClientError
from dotenv import dotenv_values
from pydantic import SecretStr

from lakelab.resources import resources
from lakelab.secrets import ENV_FILE, SHIPPED_EXAMPLES, ensure_env_file
from lakelab.settings import ROOT, Settings, environment
from services import compose, supervisor
from services.api.service import SERVICE as API
from services.base import Service, write_private
from services.registry import SERVICES
from services.s3.client import get_client

SAMPLE = ROOT / ".env.sample"


def _shipped_logins() -> dict[str, tuple[str, str]]:
    """Access key and secret pairs as the project has shipped them, by user."""
    users = {"admin": ("lakelab", "lakelab-secret-change-me")}
    users |= {user.name: (user.name, f"{user.name}-secret-change-me") for user in resources().users}
    return users


@pytest.mark.integration
def test_shipped_s3_logins_are_refused(stack):
    for user, (access_key, secret_key) in _shipped_logins().items():
        shipped = stack.model_copy(update={"s3_access_key": access_key, "s3_secret_key": SecretStr(secret_key)})
        with pytest.raises(ClientError) as refused:
            get_client(shipped).list_buckets()
        assert refused.value.response["Error"]["Code"] in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"), user


@pytest.mark.integration
def test_the_shipped_postgres_login_is_refused(stack):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host=stack.pg_host, port=stack.pg_port, user=stack.pg_user, password="lakelab-pg-change-me",
                        dbname="postgres", connect_timeout=5)


@pytest.mark.integration
def test_the_shipped_api_key_is_refused(stack):
    for base in (stack.gateway_url, stack.api_url):
        response = httpx.get(f"{base}/query", params={"query": "SELECT 1"}, headers={"X-API-Key": "dev-key-change-me"})
        assert response.status_code == 401 and response.json()["error"] == "unauthorized"


@pytest.mark.integration
def test_the_env_file_holds_generated_secrets_and_is_private(stack):
    assert stat.S_IMODE(ENV_FILE.stat().st_mode) == 0o600
    values = environment()
    for name in ("LAKELAB_S3_SECRET_KEY", "LAKELAB_PG_PASSWORD", "LAKELAB_API_KEYS", "LAKELAB_TRINO_PASSWORD",
                 "LAKELAB_TRINO_API_PASSWORD", "LAKELAB_TRINO_SHARED_SECRET",
                 *(user.secret_key_env for user in resources().users)):
        assert values.get(name) and values[name] not in SHIPPED_EXAMPLES and len(values[name]) >= 24, name


@pytest.mark.unit
def test_a_new_checkout_gets_its_own_compose_project_and_an_older_one_keeps_its_volumes(tmp_path, monkeypatch):
    """Compose volumes belong to a project, not to a checkout: two checkouts sharing one found
    each other's PostgreSQL, made with the other's password."""
    for name in [n for n in os.environ if n.startswith("LAKELAB_")]:
        monkeypatch.delenv(name)
    projects = []
    for checkout in ("one", "two"):
        env_file = tmp_path / checkout / ".env"
        env_file.parent.mkdir()
        ensure_env_file(env_file)
        project = dotenv_values(env_file)["LAKELAB_COMPOSE_PROJECT"]
        assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*", project), project  # a name compose accepts
        assert Settings(_env_file=env_file).compose_project == project
        projects.append(project)
    assert projects[0] != projects[1]
    older = tmp_path / "older.env"
    older.write_text("LAKELAB_PG_PASSWORD=made-before-projects-per-checkout\n")
    ensure_env_file(older)
    assert "LAKELAB_COMPOSE_PROJECT" not in dotenv_values(older)
    assert Settings(_env_file=older).compose_project == "lakelab"
    assert dotenv_values(older)["LAKELAB_PG_PASSWORD"] == "made-before-projects-per-checkout"


@pytest.mark.unit
def test_the_sample_file_is_never_read_as_configuration(tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.startswith("LAKELAB_")]:
        monkeypatch.delenv(name)
    empty_env_file = tmp_path / ".env"
    empty_env_file.write_text("")
    bare = Settings(_env_file=empty_env_file)
    assert Settings.model_config["env_file"] == ROOT / ".env"
    sample = {k: v for k, v in dotenv_values(SAMPLE).items() if v}
    for name in ("LAKELAB_S3_SECRET_KEY", "LAKELAB_PG_PASSWORD", "LAKELAB_API_KEYS", "LAKELAB_TRINO_PASSWORD"):
        value = getattr(bare, name.removeprefix("LAKELAB_").lower()).get_secret_value()
        assert value == "", f"{name} = {value!r} without .env: read from {SAMPLE.name}?"
        assert sample.get(name, "") in ("", *SHIPPED_EXAMPLES)  # the sample holds no real-looking secret


@pytest.mark.integration
def test_a_start_with_a_shipped_secret_is_refused(stack):
    env = {**os.environ, "LAKELAB_API_KEYS": "dev-key-change-me"}
    result = subprocess.run([str(Path(sys.executable).parent / "lakelab"), "up", "api"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "LAKELAB_API_KEYS" in result.stdout + result.stderr and "shipped example" in result.stdout + result.stderr
    API.check(stack)  # the refused start left the running API alone


def _processes(settings: Settings, service: Service) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """(launchers, server processes) of a running service. Natively the supervisor starts the
    server itself; in compose mode the container's init and its `lakelab run` hold the secrets of
    the container (test_compose.py checks those) and start the server below them."""
    if settings.mode == "compose":
        init = compose.main_pid(settings, service.name)
        if init is None:
            return [], []
        launchers = [psutil.Process(init), *psutil.Process(init).children()]
        return launchers, [p for launcher in launchers[1:] for p in launcher.children(recursive=True)]
    pid = supervisor.running_pid(settings, service.name)
    if pid is None:
        return [], []
    root = psutil.Process(pid)
    return [], [root, *root.children(recursive=True)]


def _secret_values(settings: Settings) -> dict[str, str]:
    values = environment()
    return {name: values[name] for name in settings.secret_names() if values.get(name)}


@pytest.mark.integration
def test_each_service_process_holds_only_its_own_secrets_and_none_on_its_command_line(stack):
    secrets = _secret_values(stack)
    checked = 0
    for service in SERVICES:
        launchers, servers = _processes(stack, service)
        for launcher in launchers:
            for name, value in secrets.items():
                assert value not in " ".join(launcher.cmdline()), f"{service.name} has {name} on a command line"
        allowed = {f"LAKELAB_{name.upper()}" for name in service.secrets}
        for process in servers:
            try:
                environ, cmdline = process.environ(), " ".join(process.cmdline())
            except psutil.AccessDenied:  # the PostgreSQL server runs as the postgres user
                environ, cmdline = {}, " ".join(process.cmdline())
            for name, value in secrets.items():
                assert value not in cmdline, f"{service.name} has {name} on its command line"
                if name not in allowed:
                    leaked = [k for k, v in environ.items() if value in v]
                    assert not leaked, f"{service.name} (PID {process.pid}) holds {name} as {leaked}"
            checked += 1
    assert checked >= len(SERVICES)


@pytest.mark.integration
def test_spark_jobs_get_the_s3_keys_by_environment_not_command_line(stack, tmp_path):
    script = tmp_path / "spark_cmdline.py"
    script.write_text(
        "import os, psutil\n"
        "from lakelab.settings import get_settings\n"
        "from services.spark.client import get_session\n"
        "spark = get_session(get_settings(), 'security-probe')\n"
        "print(spark.range(3).count())\n"
        "for child in psutil.Process(os.getpid()).children(recursive=True):\n"
        "    try:\n"
        "        print('CMDLINE', ' '.join(child.cmdline()))\n"
        "    except (psutil.ZombieProcess, psutil.NoSuchProcess):\n"
        "        pass  # a helper that already exited has no command line left to leak\n"
        "spark.stop()\n")
    result = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    command_lines = [line for line in result.stdout.splitlines() if line.startswith("CMDLINE")]
    assert any("java" in line for line in command_lines), result.stdout
    for name, value in _secret_values(stack).items():
        assert not any(value in line for line in command_lines), f"{name} on a Spark command line"


@pytest.mark.integration
def test_state_logs_and_secrets_are_private(stack):
    """The host's state: natively all of it; in compose mode the certificates and keys the
    containers mount (their logs and data are Docker's, in its root-only folder)."""
    state = stack.state_dir
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    private_dirs = [state / "secrets", *([stack.logs_dir, stack.pids_dir] if stack.mode == "native" else [])]
    for folder in private_dirs:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    files = [*stack.logs_dir.rglob("*.log"), *(state / "secrets").rglob("*"), *(state / "run").rglob("*")]
    files = [f for f in files if f.is_file()]
    assert any(f.suffix == ".log" for f in files) if stack.mode == "native" else any(f.suffix == ".key" for f in files)
    loose = [str(f) for f in files if stat.S_IMODE(f.stat().st_mode) & 0o077
             and (f.suffix in (".log", ".key", ".json", ".properties", ".conf", ".xml", ".pem") or "secrets" in f.parts)]
    assert not loose, loose


@pytest.mark.unit
def test_secret_files_are_created_private(tmp_path):
    """write_private creates files 0600 in 0700 folders (never write-then-chmod)."""
    umask = os.umask(0)  # the most permissive umask: the modes must not depend on it
    try:
        target = tmp_path / "secrets" / "value.key"
        write_private(target, "s3cr3t")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700


@pytest.mark.unit
def test_no_code_uses_a_fixed_shared_temporary_folder():
    sources = [p for d in ("labs", "aws", "spark_jobs", "producers", "services", "lakelab", "api")
               for p in (ROOT / d).rglob("*.py")]
    fixed = [str(p.relative_to(ROOT)) for p in sources if re.search(r"""["']/tmp/""", p.read_text())]
    assert not fixed, f"fixed /tmp paths (use tempfile for a per-run folder) in {fixed}"
