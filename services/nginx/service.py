"""Nginx (the API Gateway stand-in) from Debian, in front of the API, with `nginx/`'s config."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from lakelab.install import ensure_debian_packages
from lakelab.settings import Settings
from services.base import NotReady, Service, http_get, project_file, render

HERE = Path(__file__).parent
NGINX = "/usr/sbin/nginx"


def _prepare(settings: Settings) -> None:
    run = settings.run_dir("nginx")
    gateway = urlparse(settings.gateway_url)
    api = urlparse(settings.api_url)
    render(project_file("nginx", "lakelab.conf.template"), run / "conf.d" / "lakelab.conf", {
        "LAKELAB_API_UPSTREAM": f"{api.hostname}:{api.port}",
        "LAKELAB_GATEWAY_LISTEN": f"{settings.bind_host}:{gateway.port}",
    })
    settings.logs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # nginx writes its logs there
    # As root, nginx would hand its workers to `nobody`, who may not read the checkout.
    render(HERE / "nginx.conf", run / "nginx.conf", {
        "USER_DIRECTIVE": "user root;" if os.geteuid() == 0 else "",
        "RUN_DIR": str(run),
        "LOGS_DIR": str(settings.logs_dir),
    })
    # The template's relative paths resolve against the prefix (`-p run`): the dashboard is served
    # from run/dashboard (the project's folder, linked) and the response cache lives in
    # run/lakelab_cache, which nginx creates.
    dashboard = run / "dashboard"
    if dashboard.is_symlink() or dashboard.exists():
        dashboard.unlink()
    dashboard.symlink_to(project_file("dashboard"), target_is_directory=True)


def _check(settings: Settings) -> None:
    response = http_get(f"{settings.gateway_url}/health", "Nginx")
    # The API answers /health with 200 whenever it runs; `status` is `degraded` while Trino or the
    # metastore is down, which is not the gateway's business.
    if response.status_code != 200 or response.json().get("status") not in ("ok", "degraded"):
        raise NotReady(f"Nginx -> API /health answered {response.status_code}: {response.text[:100]}")


SERVICE = Service(
    name="nginx",
    summary="Nginx gateway in front of the API",
    endpoint=lambda s: s.gateway_url,
    install=lambda s: ensure_debian_packages({NGINX: "nginx"}),
    prepare=_prepare,
    command=lambda s: [NGINX, "-p", str(s.run_dir("nginx")), "-c", str(s.run_dir("nginx") / "nginx.conf")],
    check=_check,
    depends_on=("api",),
    start_needs=(),  # it starts without its upstream; its readiness check goes through to the API
)
