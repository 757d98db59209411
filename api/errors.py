"""One error shape for every failure, documented per endpoint in the OpenAPI schema. Clients get
a code, a message and, when known, Trino's error name and position; never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("lakelab.api")


class Position(BaseModel):
    line: int = Field(description="1-based line in the submitted SQL or template")
    column: int = Field(description="1-based column in the submitted SQL or template")


class Error(BaseModel):
    """The body of every error response."""

    error: str = Field(description="machine-readable code", examples=["read_only", "bad_sql"])
    message: str = Field(description="what went wrong, for a person")
    statement_type: str | None = Field(None, description="the rejected statement's type (read_only)",
                                       examples=["DROP TABLE"])
    trino_error: str | None = Field(None, description="Trino's error name", examples=["SYNTAX_ERROR"])
    position: Position | None = Field(None, description="where in the SQL Trino found the error, or where in "
                                                        "the template the template error is")
    service: str | None = Field(None, description="the backing service that failed (503)",
                                examples=["trino", "metastore", "kafka", "s3"])
    query_id: str | None = Field(None, description="Trino's query id, to find it in Trino's UI or logs")
    detail: list[dict[str, Any]] | None = Field(None, description="invalid request fields (422)")


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, headers: dict[str, str] | None = None,
                 **fields: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = Error(error=error, message=message, **fields)
        self.headers = headers


def _json(status: int, body: Error, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _doc(description: str) -> dict[str, Any]:
    return {"model": Error, "description": description}


# OpenAPI documentation of the error responses, for `responses=` on each route.
UNAUTHORIZED = {401: _doc("missing or unknown `X-API-Key`")}
INVALID = {422: _doc("a parameter or the body does not match the schema")}
TOO_LARGE = {413: _doc("request body over the configured limit")}
UNAVAILABLE = {503: _doc("a backing service (`service`: trino, metastore, s3) is down or failing")}
TIMEOUT = {504: _doc("Trino did not answer within the query timeout; the query was cancelled")}
RATE_LIMITED = {429: _doc("too many requests with this API key (`Retry-After` says when to retry)")}
TRINO_FAILED = {502: _doc("Trino failed with an internal error")}
URI_TOO_LONG = {414: _doc("URL over the gateway's limit (8 KiB; answered by Nginx): send long SQL with POST /query")}

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 406: "not_acceptable", 413: "payload_too_large",
          415: "unsupported_media_type", 429: "rate_limited"}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _json(exc.status, exc.body, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in detail)
        return _json(422, Error(error="invalid_request", message=f"invalid request: {fields}", detail=detail))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return _json(exc.status_code, Error(error=code, message=message), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _json(500, Error(error="internal", message="internal error; the API log has the details"))
