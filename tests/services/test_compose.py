"""Compose mode. Without Docker: docker-compose.yml follows the registry (one block per service,
its start and readiness, only its own secrets, ports from the settings on 127.0.0.1, a memory
budget), builds from the Debian base image alone, and is valid Compose. Against the running
containers: each got only its own service's secrets, publishes on 127.0.0.1 only, and none was
killed for memory."""

from __future__ import annotations

import json
import os
import re
import subprocess
from importlib import resources as importlib_resources

import jsonschema
import pytest
import yaml

from lakelab.resources import resources
from lakelab.settings import ROOT, Settings, versions
from services import compose
from services.registry import SCALE_OUT, STARTED_BY_DEFAULT, by_name
from tests.clikit import LAKELAB
from tests.conftest import CONTAINERS_USED_SINCE

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
DEFAULTS = Settings(_env_file=None)
GIB = 2**30
PUBLISHED = re.compile(r"^127\.0\.0\.1:\$\{(LAKELAB_[A-Z0-9_]+_PORT):-(\d+)\}:(\d+|\$\{\1:-\2\})$")


def _secret_names() -> set[str]:
    """Every secret's environment name: the settings' and the declared users' keys."""
    settings = {f"LAKELAB_{name.upper()}" for name, field in Settings.model_fields.items()
                if field.annotation.__name__ == "SecretStr"}
    return settings | {user.secret_key_env for user in resources().users}


def _runs(block: dict) -> str:
    assert block["command"][0] == "run" and len(block["command"]) == 2, block["command"]
    return block["command"][1]


def _bytes(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([mg])", size).groups()
    return int(number) * (2**20 if unit == "m" else GIB)


@pytest.mark.unit
def test_every_registry_service_has_a_container_running_its_native_start():
    default = {name: block for name, block in COMPOSE["services"].items() if "profiles" not in block}
    assert sorted(default) == sorted(s.name for s in STARTED_BY_DEFAULT)
    for name, block in COMPOSE["services"].items():
        by_name(_runs(block))  # a registry service
        if name in default:
            assert _runs(block) == name
    scale = {name for name, block in COMPOSE["services"].items() if block.get("profiles") == ["scale"]}
    assert {s.name for s in SCALE_OUT} | {"trino-worker"} == scale


@pytest.mark.unit
def test_each_container_gets_exactly_its_services_secrets_and_no_env_file():
    for name, block in COMPOSE["services"].items():
        assert "env_file" not in block, name
        service = by_name(_runs(block))
        environment = block.get("environment", {})
        assert set(environment) & _secret_names() == set(service.container_secrets()), name
        for secret in service.container_secrets():
            assert environment[secret] == f"${{{secret}:-}}", f"{name}: {secret} comes from .env, no default"


@pytest.mark.unit
def test_each_container_is_stopped_with_the_signal_its_service_is_stopped_with_natively():
    for name, block in COMPOSE["services"].items():
        assert block.get("stop_signal", "SIGTERM") == by_name(_runs(block)).stop_signal.name, name


@pytest.mark.unit
def test_healthchecks_read_the_readiness_kept_by_lakelab_run():
    for name, block in COMPOSE["services"].items():
        service = _runs(block)
        assert block["healthcheck"]["test"] == ["CMD", "grep", "-qx", "ready", f"/var/lib/lakelab/run/{service}/health"]


@pytest.mark.unit
def test_dependencies_are_the_registrys_and_a_container_waits_for_health_only_where_its_process_must():
    for name, block in COMPOSE["services"].items():
        if "profiles" in block:
            continue
        depends = block.get("depends_on", {})
        service = by_name(name)
        assert sorted(depends) == sorted(service.depends_on), name
        for dependency, condition in depends.items():
            # the rest is waited for by `lakelab run`'s bootstrap and readiness, as `lakelab up` does natively
            wanted = "service_healthy" if dependency in service.needed_to_start else "service_started"
            assert condition == {"condition": wanted}, f"{name} -> {dependency}"


@pytest.mark.unit
def test_ports_are_published_on_loopback_from_the_settings_ports():
    for name, block in COMPOSE["services"].items():
        for mapping in block.get("ports", []):
            match = PUBLISHED.match(mapping)
            assert match, f"{name}: {mapping} is not 127.0.0.1:${{LAKELAB_..._PORT:-default}}:port"
            setting, default = match.group(1).removeprefix("LAKELAB_").lower(), int(match.group(2))
            assert getattr(DEFAULTS, setting) == default, f"{name}: {setting} defaults to {getattr(DEFAULTS, setting)}"
    for service in STARTED_BY_DEFAULT:  # the host reaches each service where the settings say
        published = [int(PUBLISHED.match(m).group(2)) for m in COMPOSE["services"][service.name].get("ports", [])]
        assert DEFAULTS.port_of(service.endpoint(DEFAULTS)) in published, service.name


@pytest.mark.unit
def test_memory_limits_fit_a_laptop():
    default = sum(_bytes(b["mem_limit"]) for b in COMPOSE["services"].values() if "profiles" not in b)
    assert default <= 6 * GIB, f"{default / GIB:.2f} GiB"
    assert all("mem_limit" in block for block in COMPOSE["services"].values())


@pytest.mark.unit
def test_only_the_debian_base_comes_from_a_registry():
    images = {block.get("image") for block in COMPOSE["services"].values()}
    assert images == {"${LAKELAB_COMPOSE_IMAGE:-lakelab/lakelab:latest}"}
    assert all(block["pull_policy"] == "never" for block in COMPOSE["services"].values())
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?", DOCKERFILE, re.M)
    defined = {stage for _, stage in stages}
    outside = {image for image, _ in stages} - defined
    assert outside == {"${BASE_IMAGE}", "${SEED_IMAGE}"}
    assert "ARG BASE_IMAGE=debian:bookworm-slim" in DOCKERFILE and compose.BASE_IMAGE == "debian:bookworm-slim"
    assert f"ARG SEED_IMAGE={compose.SEED_IMAGE}" in DOCKERFILE  # made here from the host's cache
    assert not re.search(r"amd64|x86_64|aarch64|arm64", DOCKERFILE.split("\nARG BASE_IMAGE")[1])


@pytest.mark.unit
def test_the_image_installs_the_debian_packages_native_mode_installs():
    for package in (f"postgresql-{versions()['postgresql']['version']}", "nginx", "openjdk-17-jre-headless", "maven"):
        assert re.search(rf"\s{re.escape(package)}(\s|$)", DOCKERFILE), package
    assert "docker/install_into_image.py" in DOCKERFILE  # jars, Trino, metastore: lakelab install


@pytest.mark.unit
def test_the_compose_file_is_valid_compose():
    schema_file = importlib_resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    jsonschema.validate(COMPOSE, json.loads(schema_file.read_text()))


# --- against the running containers -------------------------------------------------------------

compose_only = pytest.mark.skipif(Settings().mode != "compose", reason="checks the containers of compose mode")


@pytest.mark.integration
@compose_only
def test_each_running_container_holds_only_its_services_secrets(stack):
    from lakelab.settings import environment

    values = {name: value for name, value in environment().items() if name in _secret_names() and value}
    for status in compose.status_of(stack):
        if status.state != "running":
            continue
        service = by_name(_runs(COMPOSE["services"][status.service]))
        env = compose.container_environment(stack, status.service)
        holding = {name for name, value in values.items() if value in env.values()}
        assert holding == set(service.container_secrets()), status.service


@pytest.mark.integration
@compose_only
def test_containers_publish_on_loopback_only_and_none_was_killed_for_memory(stack):
    containers = compose.status_of(stack)
    assert {c.service for c in containers} >= {s.name for s in STARTED_BY_DEFAULT}
    for container in containers:
        if COMPOSE["services"][container.service].get("ports") and container.state == "running":
            bindings = compose.port_bindings(stack, container.service)
            assert bindings and {ip for ip, _ in bindings} == {"127.0.0.1"}, (container.service, bindings)
        assert not container.oom_killed, container.service
        if container.state == "running":
            assert 0 < container.memory_bytes < container.memory_limit_bytes
    # since this session began using the containers: an earlier run's kills are not this suite's
    assert compose.oom_kills(stack, since=CONTAINERS_USED_SINCE[0]) == []


@pytest.mark.integration
@compose_only
def test_a_killed_container_shows_in_status_with_its_exit_code_and_up_brings_it_back(stack):
    """What a failed run needs to say which service died: `lakelab status` fails and names the
    container's state and exit code (137: SIGKILL, as the kernel's OOM killer sends)."""
    wide = {**os.environ, "COLUMNS": "200"}
    compose.compose(stack, "kill", "nginx", capture=True)  # SIGKILL, `docker compose kill`'s default
    try:
        status = subprocess.run([*LAKELAB, "status"], capture_output=True, text=True, env=wide, timeout=120, check=False)
        assert status.returncode == 1, status.stdout
        row = next(line for line in status.stdout.splitlines() if "│ nginx " in line)
        assert "exited (exit 137)" in row, status.stdout
    finally:
        subprocess.run([*LAKELAB, "up", "nginx"], capture_output=True, timeout=300, check=True)
    assert {c.service: c.healthy for c in compose.status_of(stack)}["nginx"]


@pytest.mark.unit
@compose_only
def test_reset_in_compose_mode_removes_the_volumes_and_what_native_mode_kept(tmp_path, unique):
    """A checkout used in both modes: `lakelab reset` in compose mode once left native mode's
    PostgreSQL folder (under /var/lib/lakelab as root) behind, its marker gone with the state folder."""
    settings = Settings().model_copy(update={"state_dir": tmp_path / "state",
                                             "compose_project": f"lakelab-reset-{unique}"})
    settings.make_state_dir()
    postgres = settings.postgres_data_dir
    postgres.mkdir(parents=True)
    (postgres / "PG_VERSION").write_text("17\n")
    settings.data_dir("kafka").mkdir(parents=True)
    volume = f"{settings.compose_project}_postgres-data"  # as compose names and labels its own
    subprocess.run([compose.docker(), "volume", "create", "--label", "com.docker.compose.volume=postgres-data",
                    "--label", f"com.docker.compose.project={settings.compose_project}", volume],
                   check=True, capture_output=True)

    compose.reset(settings)

    listed = subprocess.run([compose.docker(), "volume", "ls", "--quiet"], check=True, capture_output=True, text=True)
    assert volume not in listed.stdout.split()
    assert not settings.state_dir.exists()
    assert not postgres.parent.exists()  # as root /var/lib/lakelab/<state id>/, else inside the state folder
