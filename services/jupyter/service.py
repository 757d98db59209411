"""JupyterLab, an optional service (`lakelab up jupyter`; a plain `lakelab up` skips it): the
project's notebooks/ in a browser, with a Python kernel of this environment. A notebook gets
Spark wired to the lake from services/spark/client.py:get_session, Trino, S3 and Kafka from their
clients, and pandas and matplotlib.

Natively bound to 127.0.0.1 (LAKELAB_JUPYTER_PORT); in compose mode a container of the `notebooks`
profile, published on the host's 127.0.0.1 only. It starts only with LAKELAB_JUPYTER_TOKEN set,
passed to the server in its environment (never on a command line, never in a file).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import httpx

from lakelab import tls
from lakelab.install import InstallError
from lakelab.settings import ROOT, Settings
from services.base import NotReady, Service, write_private
from services.spark.service import jvm_env

CONFIG_FILE = Path(__file__).with_name("jupyter_server_config.py")
NOTEBOOKS_DIR = ROOT / "notebooks"
MIN_TOKEN_LENGTH = 16


def _require_jupyterlab_and_token(settings: Settings) -> None:
    if importlib.util.find_spec("jupyterlab") is None:
        raise InstallError("JupyterLab is not installed: run `.venv/bin/pip install -e '.[notebooks]'`")
    if len(settings.jupyter_token.get_secret_value()) < MIN_TOKEN_LENGTH:
        raise InstallError(
            f"jupyter needs LAKELAB_JUPYTER_TOKEN (at least {MIN_TOKEN_LENGTH} characters) in .env, e.g. "
            """`echo "LAKELAB_JUPYTER_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')" >> .env`""")


def _jupyter_dir(settings: Settings) -> Path:
    """Jupyter's config, data and runtime folders: the state dir, not ~/.jupyter, so a user's own
    Jupyter settings and kernels do not change this server."""
    return settings.run_dir("jupyter")


def _prepare(settings: Settings) -> None:
    """The kernel: this environment's Python, with the Java and local-IP variables Spark needs."""
    kernel_dir = _jupyter_dir(settings) / "data" / "kernels" / "python3"
    # no keys in the kernel's file: kernels inherit them from the server's environment
    write_private(kernel_dir / "kernel.json", json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (lakelab)",
        "language": "python",
        "env": jvm_env(settings),
        "metadata": {"debugger": True},
    }, indent=2))


def _env(settings: Settings) -> dict[str, str]:
    base = _jupyter_dir(settings)
    return {
        "JUPYTER_TOKEN": settings.jupyter_token.get_secret_value(),
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_PATH": str(base / "data"),   # searched first, before the environment's own python3 kernel
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "LAKELAB_NOTEBOOKS_DIR": str(NOTEBOOKS_DIR),
        "LAKELAB_JUPYTER_IP": settings.bind_host,
        "LAKELAB_JUPYTER_PORT": str(settings.port_of(settings.jupyter_url)),
    }


def _command(settings: Settings) -> list[str]:
    return [sys.executable, "-m", "jupyterlab", f"--config={CONFIG_FILE}"]


def _check(settings: Settings) -> None:
    """Ready when the server answers an authenticated API call and offers the lakelab kernel."""
    headers = {"Authorization": f"token {settings.jupyter_token.get_secret_value()}"}
    try:
        response = httpx.get(f"{settings.jupyter_url}/api/kernelspecs", headers=headers, timeout=3,
                             verify=tls.public_context())
    except httpx.HTTPError as exc:
        raise NotReady(f"JupyterLab not answering: {exc}") from exc
    if response.status_code != 200:
        raise NotReady(f"JupyterLab /api/kernelspecs answered {response.status_code}")
    kernels = response.json()["kernelspecs"]
    if kernels.get("python3", {}).get("spec", {}).get("display_name") != "Python 3 (lakelab)":
        raise NotReady(f"JupyterLab offers no lakelab kernel (kernels: {', '.join(kernels)})")


SERVICE = Service(
    name="jupyter",
    summary="JupyterLab with the lab notebooks (optional)",
    endpoint=lambda s: f"{s.jupyter_url}/lab",
    install=_require_jupyterlab_and_token,
    prepare=_prepare,
    command=_command,
    check=_check,
    env=_env,
    # the notebooks' kernels inherit the server's environment and use the lake as a student does:
    # S3 and Spark with the stack's keys, Trino, PostgreSQL (Lab D), the query API (Lab C)
    secrets=("jupyter_token", "s3_secret_key", "trino_password", "pg_password", "api_keys"),
    optional=True,
)
