"""The client of the AWS-compatible endpoint: a boto3 client of any served service, pointed at
settings.aws_endpoint_url with the stack's admin credentials."""

from __future__ import annotations

import boto3
from botocore.config import Config

from lakelab.settings import Settings


def get_client(settings: Settings, service_name: str, **config):
    """`get_client(settings, "kinesis")`; `config` goes to botocore's Config (e.g. retries)."""
    return boto3.client(
        service_name,
        endpoint_url=settings.aws_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key.get_secret_value(),
        config=Config(**{"connect_timeout": 3, "read_timeout": 30, "retries": {"max_attempts": 2}, **config}),
    )
