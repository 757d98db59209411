"""What a service provider is: a class with one method per implemented operation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from botocore import xform_name

from aws.gateway.auth import ACCOUNT_ID, Identity
from lakelab.settings import Settings


@dataclass(frozen=True)
class RequestContext:
    service: str  # botocore's service name, e.g. "kinesis"
    operation: str  # e.g. "PutRecord"
    region: str  # of the request's signing scope
    identity: Identity
    request_id: str
    account_id: str = ACCOUNT_ID

    def arn(self, resource: str) -> str:
        """An ARN of this service, region and account: `ctx.arn("stream/orders")`."""
        return f"arn:aws:{self.service}:{self.region}:{self.account_id}:{resource}"


Handler = Callable[[RequestContext, dict], dict]


class Provider:
    """Base of a service's provider. An operation is served by the method named like boto3's client
    method (PutRecord -> `put_record(self, context, params) -> dict`): params arrive validated
    against the operation's input shape and shaped as boto3 takes them (bytes for blobs, datetimes
    for timestamps); the result is shaped as boto3 returns it. Errors are raised as AwsError.
    Methods run in a worker thread, so they may block (Kafka, Trino, Thrift calls)."""

    # Declared users (not admin) may call every operation of a provider that sets this
    open_to_all_users: ClassVar[bool] = False
    # Loaded when the endpoint starts, not on its first request: it has work of its own to resume
    resumes_work_at_start: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def handler(self, operation: str) -> Handler | None:
        return getattr(self, xform_name(operation), None)

    def close(self) -> None:
        """Release connections; called once when the endpoint stops."""
