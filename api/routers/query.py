"""`/query`: one read-only SQL statement on Trino, results paged."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api import metrics
from api.deps import ApiKeyDep, EngineDep, SettingsDep
from api.engine import Engine
from api.errors import (
    INVALID,
    RATE_LIMITED,
    TIMEOUT,
    TOO_LARGE,
    TRINO_FAILED,
    UNAUTHORIZED,
    UNAVAILABLE,
    URI_TOO_LONG,
    ApiError,
    Error,
)
from api.models import QueryPage, QueryRequest
from api.sql import ALLOWED, NotReadOnly, TooComplex, Unparsable, check_in_background
from lakelab.settings import Settings

router = APIRouter(tags=["query"])

RESPONSES = {
    400: {"model": Error, "description": "not a read-only statement (`read_only`, naming `statement_type`), "
                                          "SQL Trino rejects (`bad_sql`, with Trino's message and `position`), "
                                          "a statement over the check's size, nesting or time budget "
                                          "(`too_complex`), a row over the page's byte limit "
                                          "(`result_too_large`), or neither `query` nor `token` given"},
    410: {"model": Error, "description": "the token's result cursor expired, finished or was evicted"},
    **UNAUTHORIZED, **INVALID, **RATE_LIMITED, **TRINO_FAILED, **UNAVAILABLE, **TIMEOUT,
}

DESCRIPTION = f"""Runs one SQL statement on Trino (catalogs `hive` and `hudi`; default `hive.default`)
and returns its columns and rows.

Only {ALLOWED} statements run: the SQL is parsed (sqlglot, Trino dialect) before it reaches Trino, and
anything else is refused with 400 naming the statement type.

Results come in pages of at most `page_size` rows (capped by the server's row cap) and of at most
the server's page byte limit (8 MiB by default). When more rows follow, `next_token` is set: pass it
as `token` for the next page. One API key holds at most 16 open result cursors (by default): a
17th closes that key's least recently used one, never another key's. A query that runs longer than the
server's timeout is cancelled in Trino and answered with 504."""


def _page_size(settings: Settings, page_size: int | None) -> int:
    return min(page_size or settings.api_page_rows, settings.api_page_rows)


async def _answer(request: Request, response: Response, engine: Engine, settings: Settings,
                  owner: str, query: str | None, token: str | None, page_size: int | None) -> QueryPage:
    size = _page_size(settings, page_size)
    if token:  # without page_size, pages keep the size of the first one
        page = await engine.next_page(token, owner, size if page_size else None, request)
        response.headers["Cache-Control"] = "no-store"
        return page
    if not query or not query.strip():
        raise ApiError(400, "bad_request", "give `query` (a SQL statement) or `token` (from `next_token`)")
    try:
        checked = await check_in_background(query, settings.api_max_sql_chars, settings.api_sql_check_timeout_s)
    except TooComplex as exc:
        metrics.REJECTED.labels(statement_type="TOO_COMPLEX").inc()
        raise ApiError(400, "too_complex", str(exc)) from exc
    except NotReadOnly as exc:
        metrics.REJECTED.labels(statement_type=exc.statement_type.split()[0]).inc()  # a keyword: bounded labels
        raise ApiError(400, "read_only", str(exc), statement_type=exc.statement_type) from exc
    except Unparsable as exc:
        await _trino_syntax_check(request, engine, owner, query, str(exc))
        raise AssertionError("unreachable")  # pragma: no cover
    except ValueError as exc:
        raise ApiError(400, "bad_request", str(exc)) from exc
    execution = engine.new_execution(checked.sql, checked.statement_type, owner)
    page = await engine.first_page(execution, size, request)
    if page.next_token is not None:
        response.headers["Cache-Control"] = "no-store"  # an open cursor is not for the gateway's cache
    return page


async def _trino_syntax_check(request: Request, engine: Engine, owner: str, sql: str,
                              parser_message: str) -> None:
    """sqlglot could not parse the text: ask Trino to validate it without running it, so that bad
    SQL gets Trino's own message and position. Text Trino accepts is still refused."""
    text = sql.strip().rstrip(";")
    execution = engine.new_execution(text, "EXPLAIN", owner)
    try:
        # The statement starts on line 2, so Trino's line numbers are off by one.
        await engine.run(execution, lambda: execution.fetch_all(f"EXPLAIN (TYPE VALIDATE)\n{text}"), request)
    except ApiError as exc:
        position = exc.body.position
        if position is not None:
            position.line -= 1
            exc.body.message = exc.body.message.replace(f"line {position.line + 1}:", f"line {position.line}:", 1)
        raise
    finally:
        execution.abandon()
    first_word = (text.split() or ["?"])[0].upper()[:40]
    metrics.REJECTED.labels(statement_type="UNPARSED").inc()
    raise ApiError(400, "read_only", f"the read-only check cannot parse this statement, so it was not run "
                                     f"({parser_message}); only {ALLOWED} statements are allowed",
                   statement_type=first_word)


@router.get("/query", response_model=QueryPage, responses={**RESPONSES, **URI_TOO_LONG},
            summary="Run a read-only SQL query",
            description=DESCRIPTION)
async def query_get(
    request: Request,
    response: Response,
    settings: SettingsDep,
    engine: EngineDep,
    owner: ApiKeyDep,
    query: Annotated[str | None, Query(description="one read-only SQL statement",
                                       examples=["SELECT 1 AS one"])] = None,
    token: Annotated[str | None, Query(max_length=200, description="`next_token` of the previous page")] = None,
    page_size: Annotated[int | None, Query(ge=1, description="rows per page (capped by the server)")] = None,
) -> QueryPage:
    return await _answer(request, response, engine, settings, owner, query, token, page_size)


@router.post("/query", response_model=QueryPage, responses={**RESPONSES, **TOO_LARGE},
             summary="Run a read-only SQL query (SQL in a JSON body)",
             description=DESCRIPTION + "\n\nThe same as `GET /query`, for SQL too long for a URL.")
async def query_post(
    request: Request,
    response: Response,
    body: QueryRequest,
    settings: SettingsDep,
    engine: EngineDep,
    owner: ApiKeyDep,
) -> QueryPage:
    return await _answer(request, response, engine, settings, owner, body.query, body.token, body.page_size)
