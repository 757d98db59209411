"""The Kafka Connect client of the stack: its REST API, and the connectors kept in the repo as JSON
files (`connectors/<name>.json`, the REST API's `{"name": ..., "config": {...}}` shape),
registered, inspected and removed through it. Hosts and credentials in the files are
`${env:LAKELAB_...}` references that the worker's EnvVarConfigProvider resolves
(connect-distributed.properties), so one file serves native and compose mode."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
from psycopg import sql

from lakelab import tls
from lakelab.settings import Settings
from services.kafka import client as kafka
from services.postgres import client as postgres

CONNECTORS_DIR = Path(__file__).parent / "connectors"


class ConnectorError(RuntimeError):
    """Connect refused a connector or it did not reach RUNNING; the message says why."""


def spec_path(spec: str | Path) -> Path:
    """A connector file: a path, or the name of a file in connectors/ (with or without .json)."""
    path = Path(spec)
    if path.suffix == ".json" and path.exists():
        return path
    candidate = CONNECTORS_DIR / f"{path.stem if path.suffix == '.json' else spec}.json"
    if not candidate.exists():
        known = ", ".join(sorted(p.stem for p in CONNECTORS_DIR.glob("*.json")))
        raise FileNotFoundError(f"no connector file {spec!r} (known: {known})")
    return candidate


def load(spec: str | Path, overrides: dict[str, str] | None = None,
         name: str | None = None) -> tuple[str, dict[str, str]]:
    """The connector's name and config from its file, with `overrides` applied."""
    document = json.loads(spec_path(spec).read_text())
    config = {key: str(value) for key, value in document["config"].items()}
    config.update({key: str(value) for key, value in (overrides or {}).items()})
    return name or document["name"], config


def get_client(settings: Settings) -> httpx.Client:
    """An HTTP client on Connect's REST API."""
    return httpx.Client(base_url=settings.connect_url, timeout=30, verify=tls.public_context())


def connector_plugins(settings: Settings) -> list[str]:
    with get_client(settings) as client:
        response = client.get("/connector-plugins", timeout=5)
    response.raise_for_status()
    return [plugin["class"] for plugin in response.json()]


def _raise_for(response: httpx.Response, doing: str) -> None:
    if response.is_error:
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        raise ConnectorError(f"{doing}: HTTP {response.status_code}: {message}")


def register(settings: Settings, spec: str | Path, overrides: dict[str, str] | None = None,
             name: str | None = None, wait_s: float = 90.0) -> dict:
    """Create or update the connector (PUT /connectors/<name>/config is idempotent) and wait
    until the connector and its task run; returns the status document."""
    name, config = load(spec, overrides, name)
    with get_client(settings) as client:
        validation = client.put(f"/connector-plugins/{config['connector.class'].rsplit('.', 1)[-1]}/config/validate",
                                json={**config, "name": name})
        _raise_for(validation, f"validating {name}")
        problems = [f"{c['value']['name']}: {'; '.join(c['value']['errors'])}"
                    for c in validation.json()["configs"] if c["value"]["errors"]]
        if problems:
            raise ConnectorError(f"{name}: invalid config: " + " | ".join(problems))
        _raise_for(client.put(f"/connectors/{name}/config", json=config), f"registering {name}")
        if wait_s <= 0:
            return status(settings, name)[0]
        return wait_running(settings, name, wait_s)


def wait_running(settings: Settings, name: str, wait_s: float = 90.0) -> dict:
    """Wait until the connector and all its tasks are RUNNING; a FAILED one raises with its trace."""
    deadline = time.monotonic() + wait_s
    last: dict = {}
    while time.monotonic() < deadline:
        try:
            last = status(settings, name)[0]
        except (httpx.HTTPError, ConnectorError):
            time.sleep(1)
            continue
        states = [last["connector"]["state"], *(t["state"] for t in last.get("tasks", []))]
        failed = [t for t in [last["connector"], *last.get("tasks", [])] if t["state"] == "FAILED"]
        if failed:
            trace = (failed[0].get("trace") or "").splitlines()
            raise ConnectorError(f"{name} FAILED: {' / '.join(trace[:3])}")
        if last.get("tasks") and all(state == "RUNNING" for state in states):
            return last
        time.sleep(1)
    raise ConnectorError(f"{name} not RUNNING after {wait_s:.0f} s: {json.dumps(last)[:500]}")


def status(settings: Settings, name: str | None = None) -> list[dict]:
    """Status documents (connector state, tasks, type) with each connector's config under `config`."""
    with get_client(settings) as client:
        response = client.get("/connectors", params=[("expand", "status"), ("expand", "info")])
        _raise_for(response, "listing connectors")
        found = response.json()
    if name is not None and name not in found:
        raise ConnectorError(f"no connector {name!r} (registered: {', '.join(sorted(found)) or 'none'})")
    return [{**found[n]["status"], "config": found[n]["info"]["config"]}
            for n in sorted(found) if name is None or n == name]


def remove(settings: Settings, name: str, purge: bool = False) -> list[str]:
    """Delete the connector. With `purge`, also forget where it stopped (its source offsets),
    drop its PostgreSQL replication slot and publication, and delete its topics, so registering
    it again starts over with a snapshot. Returns what was removed."""
    removed: list[str] = []
    config = status(settings, name)[0]["config"]
    with get_client(settings) as client:
        if purge:
            # Offsets can only be reset on a stopped connector (KIP-875).
            _raise_for(client.put(f"/connectors/{name}/stop"), f"stopping {name}")
            deadline = time.monotonic() + 60
            while status(settings, name)[0]["connector"]["state"] != "STOPPED":
                if time.monotonic() > deadline:
                    raise ConnectorError(f"{name} did not stop")
                time.sleep(0.5)
            _raise_for(client.delete(f"/connectors/{name}/offsets"), f"resetting offsets of {name}")
            removed.append("offsets")
        _raise_for(client.delete(f"/connectors/{name}"), f"deleting {name}")
        removed.insert(0, f"connector {name}")
    if purge and config.get("connector.class", "").endswith("PostgresConnector"):
        removed += _drop_slot_and_publication(settings, config)
    if purge and config.get("topic.prefix"):
        removed += _delete_topics(settings, config["topic.prefix"])
    return removed


def _drop_slot_and_publication(settings: Settings, config: dict[str, str]) -> list[str]:
    slot = config.get("slot.name", "debezium")
    publication = config.get("publication.name", "dbz_publication")
    removed = []
    with postgres.get_client(settings, config.get("database.dbname", "postgres"), autocommit=True) as conn:
        deadline = time.monotonic() + 30
        while True:  # the stopped task releases the slot asynchronously
            row = conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
            if row is None:
                break
            if not row[0]:
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                removed.append(f"slot {slot}")
                break
            if time.monotonic() > deadline:
                raise ConnectorError(f"replication slot {slot} still in use")
            time.sleep(0.5)
        if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (publication,)).fetchone():
            conn.execute(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(publication)))
            removed.append(f"publication {publication}")
    return removed


def _delete_topics(settings: Settings, prefix: str) -> list[str]:
    client = kafka.get_client(settings)
    pattern = re.compile(rf"^({re.escape(prefix)}\..+|__debezium-heartbeat\.{re.escape(prefix)})$")
    topics = [t for t in client.list_topics(timeout=10).topics if pattern.match(t)]
    if topics:
        for future in client.delete_topics(topics, operation_timeout=30).values():
            future.result()
    return [f"topic {t}" for t in sorted(topics)]
