"""The ASGI app: one endpoint for every served AWS service (see registry.py) and S3."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from aws.gateway import sigv4
from aws.gateway.auth import Identity, load_identities
from aws.gateway.errors import AwsError, CommonError
from aws.gateway.messages import HttpRequest, HttpResponse
from aws.gateway.provider import RequestContext
from aws.gateway.registry import Registry
from aws.gateway.routing import Route, Router
from aws.gateway.validation import validate
from aws.s3.proxy import S3Proxy
from lakelab.settings import Settings, get_settings

log = logging.getLogger(__name__)
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]
MAX_BODY_BYTES = 64 * 1024 * 1024  # S3 bodies are streamed and not limited here


class Gateway:
    def __init__(self, settings: Settings, registry: Registry | None = None, s3: S3Proxy | None = None) -> None:
        self.registry = registry or Registry(settings)
        self.router = Router(self.registry.services)
        self.identities = load_identities(settings)
        self.s3 = s3 or S3Proxy(settings.s3_endpoint)

    async def handle(self, request: Request) -> Response:
        message = HttpRequest(
            method=request.method,
            path=(request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1"),
            query=request.scope.get("query_string", b"").decode("latin-1"),
            headers=[(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.headers.raw],
        )
        if not self.router.needs_body(message):
            return await self.s3.forward(request)
        if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
            return Response(f"request body over {MAX_BODY_BYTES} bytes", status_code=413)
        message = replace(message, body=await request.body())
        route = self.router.route(message)
        if route is None:
            return await self.s3.forward(request, message.body)
        request_id = str(uuid.uuid4())
        try:
            answer = await self._dispatch(route, message, request_id)
        except AwsError as error:
            answer = route.protocol.serialize_error(route.service, error, request_id)
        except Exception:
            log.exception("request %s (%s) failed", request_id, route.operation_name)
            error = CommonError("InternalFailure", f"The endpoint failed on this request (id {request_id}); "
                                                   "its log has the cause.")
            answer = route.protocol.serialize_error(route.service, error, request_id)
        return Response(answer.body, status_code=answer.status, headers=answer.headers)

    async def _dispatch(self, route: Route, request: HttpRequest, request_id: str) -> HttpResponse:
        operation = route.operation()
        service = operation.service_model
        identity, region = self._authenticate(request, service.signing_name)
        provider = self.registry.loaded(service.service_name) or \
            await run_in_threadpool(self.registry.provider, service.service_name)
        handler = provider.handler(operation.name)
        if handler is None:
            raise CommonError("NotImplemented", f"{service.service_name}:{operation.name} is not implemented by "
                                                "lakelab's AWS endpoint")
        if not (identity.admin or provider.open_to_all_users):
            action = f"{service.signing_name}:{operation.name}"
            raise CommonError("AccessDenied", f"User: {identity.arn} is not authorized to perform: {action} because "
                                              f"no identity-based policy allows the {action} action (in lakelab "
                                              f"only the admin identity may call {service.service_name}; declared "
                                              "users have S3, within their buckets, and STS)")
        params = route.protocol.parse(operation, request)
        validate(operation.input_shape, params)
        context = RequestContext(service.service_name, operation.name, region, identity, request_id)
        result = await run_in_threadpool(handler, context, params)
        return route.protocol.serialize(operation, result or {}, request_id)

    def _authenticate(self, request: HttpRequest, signing_name: str) -> tuple[Identity, str]:
        claim = sigv4.parse(request)
        if claim is None:
            raise CommonError("MissingAuthenticationToken", "Missing Authentication Token")
        identity = self.identities.get(claim.access_key)
        if identity is None:
            raise CommonError("UnrecognizedClient", "The security token included in the request is invalid.")
        if claim.service != signing_name:
            raise CommonError("InvalidSignature", f"Credential should be scoped to correct service: '{signing_name}'.")
        sigv4.verify(request, claim, identity.secret_key)
        return identity, claim.region

    async def aclose(self) -> None:
        await run_in_threadpool(self.registry.close)
        await self.s3.aclose()


def create_app(settings: Settings | None = None, registry: Registry | None = None,
               s3: S3Proxy | None = None) -> Starlette:
    gateway = Gateway(settings or get_settings(), registry, s3)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(gateway.registry.start)
        yield
        await gateway.aclose()

    return Starlette(routes=[StarletteRoute("/{path:path}", gateway.handle, methods=METHODS)], lifespan=lifespan)
