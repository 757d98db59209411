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
from services.spark.service import MASTER as SPARK_MASTER
from services.spark.service import SERVICE as SPARK
from services.spark.service import WORKER as SPARK_WORKER
from services.trino.service import SERVICE as TRINO

SERVICES: list[Service] = [POSTGRES, S3, KAFKA, METASTORE, CONNECT, API, TRINO, NGINX, AWS, JUPYTER]
"""Long-running services; the optional ones (JupyterLab) start only when named. Spark runs as jobs
(local[*]), so it is installed but never started."""

STARTED_BY_DEFAULT: list[Service] = [s for s in SERVICES if not s.optional]
"""What a plain `lakelab up` starts: natively as processes, in compose mode one container each."""

TOOLS: list[Service] = [SPARK]

SCALE_OUT: list[Service] = [SPARK_MASTER, SPARK_WORKER]
"""Started only when named (compose's `scale` profile runs them, with a second Trino node): a
standalone Spark cluster for jobs whose `spark_master` is its master."""


def by_name(name: str) -> Service:
    for service in SERVICES + TOOLS + SCALE_OUT:
        if service.name == name:
            return service
    known = ", ".join(s.name for s in SERVICES + TOOLS + SCALE_OUT)
    raise KeyError(f"unknown service {name!r}; known: {known}")
