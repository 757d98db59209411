"""Which service and operation a request is, from what AWS SDKs send: JSON services name both in
`X-Amz-Target`; query services (STS) send `Action` and `Version` in a form; everything else,
including anything signed for "s3", is S3."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import botocore.session
from botocore.model import OperationModel, OperationNotFoundError, ServiceModel

from aws.gateway import sigv4
from aws.gateway.errors import CommonError
from aws.gateway.messages import HttpRequest
from aws.gateway.protocols import JsonProtocol, QueryProtocol, WireProtocol, protocol_for

FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Route:
    protocol: WireProtocol
    service: ServiceModel | None  # None: a service this endpoint does not serve
    operation_name: str

    def operation(self) -> OperationModel:
        if self.service is None:
            raise CommonError("UnknownOperation", f"{self.operation_name}: this endpoint does not serve that service")
        try:
            return self.service.operation_model(self.operation_name)
        except OperationNotFoundError:
            raise CommonError("UnknownOperation", f"{self.service.service_name} has no operation "
                                                  f"{self.operation_name!r}") from None


class Router:
    def __init__(self, services: Iterable[str]) -> None:
        session = botocore.session.get_session()
        models = [session.get_service_model(name) for name in services]
        self._by_target = {m.metadata["targetPrefix"]: m for m in models if "targetPrefix" in m.metadata}
        self._query_by_version = {m.api_version: m for m in models if m.protocol == "query"}
        self._by_signing_name = {m.signing_name: m for m in models}

    def needs_body(self, request: HttpRequest) -> bool:
        """Whether routing must read the body; if not, the request is S3's and its body is
        streamed through unread. `request.body` is not looked at."""
        scope = sigv4.scope_service(request)
        if scope == "s3":
            return False
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        return bool(request.header("x-amz-target") or (request.method == "POST" and content_type == FORM)
                    or "Action" in request.query_params or scope in self._by_signing_name)

    def route(self, request: HttpRequest) -> Route | None:
        """The service and operation of a request whose body was read; None for S3."""
        if sigv4.scope_service(request) == "s3":
            return None
        target = request.header("x-amz-target")
        if target:
            prefix, _, operation = target.rpartition(".")
            service = self._by_target.get(prefix)
            if service is None:  # named whole in the error: "DynamoDB_20120810.ListTables"
                return Route(JsonProtocol(), None, target)
            return Route(protocol_for(service), service, operation)
        action = request.form.get("Action")
        if action:
            service = self._query_by_version.get(request.form.get("Version", ""))
            return Route(QueryProtocol(), service, action)
        service = self._by_signing_name.get(sigv4.scope_service(request) or "")
        if service is not None:  # signed for a service we serve, but naming no operation
            return Route(protocol_for(service), service, "")
        return None
