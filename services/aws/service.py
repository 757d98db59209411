"""The AWS-compatible endpoint (`aws/gateway/`): one uvicorn process serving S3 (passed through to
the S3 server), Kinesis over Kafka, Firehose, Glue, Athena and STS on settings.aws_endpoint_url."""

from __future__ import annotations

import sys

from botocore.exceptions import BotoCoreError, ClientError

from lakelab.resources import resources
from lakelab.settings import Settings
from services.aws.client import get_client
from services.base import NotReady, Service


def _command(settings: Settings) -> list[str]:
    return [sys.executable, "-m", "aws.gateway", "--host", settings.bind_host,
            "--port", str(settings.port_of(settings.aws_endpoint_url))]


def _check(settings: Settings) -> None:
    """A signed STS GetCallerIdentity must come back naming the admin identity."""
    try:
        identity = get_client(settings, "sts").get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        raise NotReady(f"AWS endpoint not answering GetCallerIdentity: {exc}") from exc
    if not identity["Arn"].endswith(":user/admin"):
        raise NotReady(f"AWS endpoint answered GetCallerIdentity as {identity['Arn']}, not the admin")


SERVICE = Service(
    name="aws",
    summary="AWS-compatible endpoint: S3, Kinesis, Firehose, Glue, Athena, STS",
    endpoint=lambda s: s.aws_endpoint_url,
    command=_command,
    check=_check,
    # S3 is passed through, Kinesis and Firehose sit on Kafka, Glue and Athena on Trino (and the
    # metastore behind it), and definitions that outlive the process in PostgreSQL
    depends_on=("s3", "kafka", "postgres", "trino"),
    # Athena and Glue reach Trino per request: the process starts beside Trino instead of after it
    start_needs=("s3", "kafka", "postgres"),
    # SigV4 checks need every identity's secret; Athena and Glue run on Trino as the stack's user;
    # the S3 admin key writes Athena's results; definitions live in PostgreSQL
    secrets=("s3_secret_key", "pg_password", "trino_password",
             *(user.secret_key_env.removeprefix("LAKELAB_").lower() for user in resources().users)),
)
