"""The registry of the stack's services, in start order."""

from __future__ import annotations

from services.api.service import SERVICE as API
from services.aws.service import SERVICE as AWS
from services.base import Service
from services.connect.service import SERVICE as CONNECT
from services.jupyter.service import SERVICE as JUPYTER
from services.kafka.service import SERVICE as KAFKA
from services.metastore.service import SERVICE as METASTORE
from services.nginx.service import SERVICE as NGINX
from services.postgres.service import SERVICE as POSTGRES
from services.s3.service import SERVICE as S3
from services.spark.service import SERVICE as SPARK
from services.trino.service import SERVICE as TRINO

SERVICES: list[Service] = [POSTGRES, S3, KAFKA, METASTORE, CONNECT, API, TRINO, NGINX, AWS, JUPYTER]
"""Long-running services; the optional ones (JupyterLab) start only when named. Spark runs as jobs
(local[*]), so it is installed but never started."""

TOOLS: list[Service] = [SPARK]


def by_name(name: str) -> Service:
    for service in SERVICES + TOOLS:
        if service.name == name:
            return service
    known = ", ".join(s.name for s in SERVICES + TOOLS)
    raise KeyError(f"unknown service {name!r}; known: {known}")
