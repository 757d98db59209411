"""Running SQL on Trino for the API.

Trino's protocol is spoken over blocking HTTPS connections (`api/trino_protocol.py`), so each
piece of Trino work runs in a worker thread while the request waits for it, for the query timeout
and for the client going away, whichever comes first. On a timeout or a disconnect the Trino query
is cancelled (`DELETE /v1/query/{id}`), the worker is abandoned and closes its connection when its
request returns.

Trino connections are kept between requests (`Connections`): each stays open, so a query pays no
TCP and TLS handshake. Opening one per request was most of the latency the API added over the
Trino client (about 25 ms of 49 at p50 on a loaded 2-core machine, bench/api.py).

Large results are paged: a query whose rows do not fit in one page keeps its Trino cursor open,
registered under a random id, and the page carries `next_token` = `<id>.<next page>`. A token
can be replayed for the newest page (a retried request gets the same rows); older tokens are
gone. Cursors idle for `api_cursor_ttl_s` are cancelled. One key holds at most
`api_cursors_per_key` cursors (its own least recently used one is closed for a new one), so one
client cannot evict others' cursors until `api_max_open_cursors` are open in all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
from starlette.requests import Request
from trino.exceptions import DatabaseError, HttpError, TrinoQueryError

from api import metrics
from api.errors import ApiError, Position
from api.models import Column, QueryPage
from api.trino_protocol import Statement, TrinoConnection
from lakelab import tls
from lakelab.settings import Settings

log = logging.getLogger("lakelab.api")
T = TypeVar("T")
TOKEN = re.compile(r"(?P<id>[A-Za-z0-9_-]{16,64})\.(?P<page>[0-9]{1,9})")
TRINO_SOURCE = "lakelab-api"
NOT_FOUND = {"TABLE_NOT_FOUND", "SCHEMA_NOT_FOUND", "CATALOG_NOT_FOUND", "MISSING_TABLE",
             "MISSING_SCHEMA_NAME", "MISSING_CATALOG_NAME"}


class Stopped(Exception):
    """The event loop asked the worker to stop (timeout, client gone, cursor expired)."""


class Connections:
    """Idle Trino connections of the API's user, taken by one execution at a time and given back
    when it is done; at most `api_trino_threads` are kept."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: list[TrinoConnection] = []
        self._lock = threading.Lock()

    def take(self) -> TrinoConnection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        s = self.settings
        return TrinoConnection(s, s.trino_api_user, s.trino_api_password.get_secret_value(), TRINO_SOURCE,
                               timeout=s.api_query_timeout_s + 5)

    def give_back(self, conn: TrinoConnection) -> None:
        with self._lock:
            if len(self._idle) < self.settings.api_trino_threads:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class Execution:
    """One Trino session working for one request, or for one open result cursor. Only one worker
    thread uses it at a time; the event loop may only `stop` and `abandon` it. It takes a
    connection when it first runs SQL and gives it back when closed, unless it was stopped (then
    the connection may be mid-request and is closed)."""

    def __init__(self, connections: Connections, sql: str, statement_type: str, owner: str,
                 max_rows: int, max_page_bytes: int) -> None:
        self.id = secrets.token_urlsafe(18)
        self.connections = connections
        self.conn: TrinoConnection | None = None
        self.sql = sql
        self.statement_type = statement_type
        self.owner = owner
        self.max_rows = max_rows
        self.max_page_bytes = max_page_bytes
        self._key_bytes = 0
        self.statement: Statement | None = None
        self.columns: list[Column] = []
        self.rows_sent = 0
        self.page = -1
        self.page_size = 0
        self.last_page: QueryPage | None = None
        self.finished = False
        self.expires_at = 0.0
        self.stop = threading.Event()
        self.lock = asyncio.Lock()  # one request at a time on a cursor
        self._pending: list[list[Any]] = []
        self._state = threading.Lock()
        self._busy = False
        self._abandoned = False
        self._closed = False

    @property
    def query_id(self) -> str | None:
        return self.statement.query_id if self.statement is not None else None

    # --- worker side -------------------------------------------------------------------------

    def _check_stop(self) -> None:
        if self.stop.is_set():
            if self.statement is not None:
                try:
                    self.statement.cancel()
                except Exception:  # noqa: BLE001 - best effort, the loop cancels over REST too
                    pass
            raise Stopped()

    def _execute(self, sql: str) -> Statement:
        self._check_stop()
        with self._state:
            if self.conn is None:
                self.conn = self.connections.take()
        self.statement = self.conn.execute(sql)
        self._check_stop()
        return self.statement

    def start(self, page_size: int) -> tuple[list[list[Any]], bool, bool]:
        statement = self._execute(self.sql)
        names: dict[str, int] = {}
        for column in statement.columns or []:
            name = column["name"]
            seen = names.get(name, 0)
            names[name] = seen + 1
            self.columns.append(Column(name=name if not seen else f"{name}_{seen + 1}", type=column["type"]))
        self._key_bytes = sum(len(c.name.encode()) + 4 for c in self.columns)
        return self.read(page_size)

    def read(self, page_size: int) -> tuple[list[list[Any]], bool, bool]:
        """Up to `page_size` rows (fewer once they reach `max_page_bytes` as JSON), whether more
        follow, and whether the total row cap cut them."""
        assert self.statement is not None
        want = max(0, min(page_size, self.max_rows - self.rows_sent))
        rows, self._pending = self._pending, []
        sizes = [self._json_size(row) for row in rows]
        while len(rows) <= want and sum(sizes) <= self.max_page_bytes:  # one row more than asked, to
            self._check_stop()                                           # know whether more follow
            row = self.statement.fetchone()
            if row is None:
                break
            rows.append(row)
            sizes.append(self._json_size(row))
        if sum(sizes) > self.max_page_bytes:
            if sizes[0] > self.max_page_bytes:
                raise ApiError(400, "result_too_large", f"a row of this result is over the page limit of "
                                                        f"{self.max_page_bytes:,} bytes; select fewer or shorter "
                                                        f"columns", query_id=self.query_id)
            want = min(want, len(rows) - 1)  # the last row read is the one that went over
        rows, self._pending = rows[:want], rows[want:]
        self.rows_sent += len(rows)
        more = bool(self._pending)
        truncated = more and self.rows_sent >= self.max_rows
        return rows, more and not truncated, truncated

    def _json_size(self, row: list[Any]) -> int:
        """Bytes of the row in a page: its values as JSON plus its column names as keys."""
        return len(json.dumps(row, default=str, ensure_ascii=False).encode()) + self._key_bytes

    def fetch_all(self, sql: str, limit: int | None = None) -> list[list[Any]]:
        """Run a (metadata) statement to the end; at most `limit` rows are kept."""
        statement = self._execute(sql)
        rows: list[list[Any]] = []
        while (row := statement.fetchone()) is not None:
            self._check_stop()
            if limit is None or len(rows) < limit:
                rows.append(row)
        return rows

    # --- ownership -----------------------------------------------------------------------------

    def enter(self) -> None:
        with self._state:
            self._busy = True

    def leave(self) -> None:
        with self._state:
            self._busy = False
            close = self._abandoned
        if close:
            self.close()

    def abandon(self) -> None:
        """Close the connection now, or when the worker using it returns."""
        with self._state:
            self._abandoned = True
            busy = self._busy
        if not busy:
            self.close()

    def close(self) -> None:
        with self._state:
            if self._closed or self.conn is None:
                self._closed = True
                return
            self._closed = True
        if not self.stop.is_set():
            self.connections.give_back(self.conn)
            return
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            log.debug("closing a Trino connection failed", exc_info=True)


def map_error(exc: BaseException) -> ApiError:
    """A Trino client exception as the API error a client should see."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, TrinoQueryError):
        name, kind, message, query_id = exc.error_name, exc.error_type, exc.message, exc.query_id
        position = Position(line=exc.error_location[0], column=exc.error_location[1]) if exc.error_location else None
        fields = {"trino_error": name, "query_id": query_id}
        if name == "EXCEEDED_TIME_LIMIT":
            return ApiError(504, "timeout", message, **fields)
        if kind == "INSUFFICIENT_RESOURCES":
            return ApiError(503, "service_unavailable", message, service="trino", **fields)
        service = _failing_service(name or "", message)
        if kind in ("EXTERNAL", "INTERNAL_ERROR") and service:
            return ApiError(503, "service_unavailable", message, service=service, **fields)
        if kind == "INTERNAL_ERROR":
            return ApiError(502, "trino_error", f"Trino failed: {message}", service="trino", **fields)
        return ApiError(400, "bad_sql", message, position=position, **fields)
    if isinstance(exc, (DatabaseError, HttpError, ConnectionError)):
        return ApiError(503, "service_unavailable", f"Trino is unreachable or not ready: {str(exc)[:300]}",
                        service="trino")
    raise exc


def _failing_service(name: str, message: str) -> str | None:
    text = f"{name} {message}".lower()
    if "metastore" in text or "thrift" in text:
        return "metastore"
    if any(word in text for word in ("filesystem_error", "cannot_open_split", "s3", "connection refused")):
        return "s3"
    return None


async def _client_gone(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.executor = ThreadPoolExecutor(settings.api_trino_threads, thread_name_prefix="trino")
        self.connections = Connections(settings)
        self.http = httpx.AsyncClient(timeout=3, verify=tls.client_context(settings), auth=(
            settings.trino_api_user, settings.trino_api_password.get_secret_value()))
        self.cursors: OrderedDict[str, Execution] = OrderedDict()
        self._sweeper: asyncio.Task | None = None

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self._sweeper:
            self._sweeper.cancel()
        for execution in list(self.cursors.values()):
            await self._abort(execution, "shutdown")
        self.cursors.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.connections.close()
        await self.http.aclose()

    def new_execution(self, sql: str, statement_type: str, owner: str) -> Execution:
        return Execution(self.connections, sql, statement_type, owner, self.settings.api_max_rows,
                         self.settings.api_page_bytes)

    async def run(self, execution: Execution, work: Callable[[], T], request: Request | None) -> T:
        """`work` in a worker thread, bounded by the query timeout and by the client's presence."""
        loop = asyncio.get_running_loop()

        def in_thread() -> T:
            try:
                return work()
            finally:
                execution.leave()

        execution.enter()
        future = loop.run_in_executor(self.executor, in_thread)
        waiters: set[asyncio.Future] = {future}
        gone = asyncio.ensure_future(_client_gone(request)) if request is not None else None
        if gone is not None:
            waiters.add(gone)
        try:
            done, _ = await asyncio.wait(waiters, timeout=self.settings.api_query_timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            if gone is not None:
                gone.cancel()
        if future in done:
            try:
                return future.result()
            except Stopped as exc:
                raise ApiError(410, "cursor_gone", "the query was cancelled") from exc
            except Exception as exc:  # noqa: BLE001 - every Trino failure is mapped
                metrics.TRINO_QUERIES.labels(outcome="error").inc()
                raise map_error(exc) from exc
        future.add_done_callback(_retrieve)
        reason = "client_gone" if gone is not None and gone in done else "timeout"
        query_id = execution.query_id
        await self._abort(execution, reason)
        if reason == "client_gone":
            raise ApiError(499, "client_closed_request", "the client went away; the query was cancelled",
                           query_id=query_id)
        raise ApiError(504, "timeout", f"Trino did not finish within {self.settings.api_query_timeout_s:g} s; "
                                       f"the query was cancelled", query_id=query_id, service="trino")

    async def _abort(self, execution: Execution, reason: str) -> None:
        execution.stop.set()
        self.cursors.pop(execution.id, None)
        if execution.query_id and not execution.finished:
            execution.finished = True
            await self._cancel(execution.query_id, reason)
        execution.abandon()
        metrics.OPEN_CURSORS.set(len(self.cursors))

    async def _cancel(self, query_id: str, reason: str) -> None:
        metrics.TRINO_CANCELLED.labels(reason=reason).inc()
        try:
            response = await self.http.delete(f"{self.settings.trino_url}/v1/query/{query_id}",
                                              headers={"X-Trino-User": self.settings.trino_api_user})
            log.info("cancelled Trino query %s (%s): HTTP %s", query_id, reason, response.status_code)
        except httpx.HTTPError as exc:
            log.warning("could not cancel Trino query %s (%s): %s", query_id, reason, exc)

    # --- paging --------------------------------------------------------------------------------

    def _page(self, execution: Execution, rows: list[list[Any]], more: bool, truncated: bool,
              began: float) -> QueryPage:
        execution.page += 1
        keys = [c.name for c in execution.columns]
        page = QueryPage(
            query=execution.sql, statement_type=execution.statement_type, query_id=execution.query_id,
            columns=execution.columns, results=[dict(zip(keys, row)) for row in rows], row_count=len(rows),
            page=execution.page, next_token=f"{execution.id}.{execution.page + 1}" if more else None,
            truncated=truncated, elapsed_ms=round((time.monotonic() - began) * 1000, 1),
        )
        metrics.ROWS_RETURNED.inc(len(rows))
        execution.last_page = page
        execution.expires_at = time.monotonic() + self.settings.api_cursor_ttl_s
        if not more:
            if truncated and execution.query_id:
                asyncio.ensure_future(self._cancel(execution.query_id, "row_cap"))
            execution.finished = True
            execution.abandon()
        return page

    async def first_page(self, execution: Execution, page_size: int, request: Request | None) -> QueryPage:
        began = time.monotonic()
        execution.page_size = page_size
        try:
            rows, more, truncated = await self.run(execution, lambda: execution.start(page_size), request)
        except BaseException:
            execution.abandon()
            raise
        metrics.TRINO_QUERIES.labels(outcome="ok").inc()
        page = self._page(execution, rows, more, truncated, began)
        if more:
            self._register(execution)
        return page

    def _register(self, execution: Execution) -> None:
        """Keep the cursor open; to stay within the quotas, close the key's own least recently used
        cursor, or when all cursors are taken, one of the key holding the most."""
        mine = [c for c in self.cursors.values() if c.owner == execution.owner]
        if len(mine) >= self.settings.api_cursors_per_key:
            self._evict(mine[0])
        elif len(self.cursors) >= self.settings.api_max_open_cursors:
            held = Counter(c.owner for c in self.cursors.values())
            greediest = held.most_common(1)[0][0]
            self._evict(next(c for c in self.cursors.values() if c.owner == greediest))
        self.cursors[execution.id] = execution
        metrics.OPEN_CURSORS.set(len(self.cursors))

    def _evict(self, execution: Execution) -> None:
        self.cursors.pop(execution.id, None)
        asyncio.ensure_future(self._abort(execution, "evicted"))

    async def next_page(self, token: str, owner: str, page_size: int | None, request: Request | None) -> QueryPage:
        match = TOKEN.fullmatch(token)
        if not match:
            raise ApiError(400, "bad_token", "malformed token: pass `next_token` from a previous page as it is")
        execution = self.cursors.get(match["id"])
        if execution is None or not secrets.compare_digest(execution.owner, owner):
            raise ApiError(410, "cursor_gone", "this result cursor expired, finished or was evicted; run the "
                                               "query again")
        wanted = int(match["page"])
        async with execution.lock:
            if wanted == execution.page and execution.last_page is not None:
                return execution.last_page  # a retried request: the same page again
            if wanted != execution.page + 1 or execution.last_page is None or execution.last_page.next_token is None:
                raise ApiError(410, "cursor_gone", f"page {wanted} is no longer available (the newest page "
                                                   f"is {execution.page}); run the query again")
            self.cursors.move_to_end(execution.id)
            began = time.monotonic()
            size = page_size or execution.page_size
            try:
                rows, more, truncated = await self.run(execution, lambda: execution.read(size), request)
            except BaseException:
                await self._abort(execution, "error")
                raise
            page = self._page(execution, rows, more, truncated, began)
        if not more:
            # keep the finished cursor's last page until it expires, for replays
            execution.expires_at = time.monotonic() + min(30.0, self.settings.api_cursor_ttl_s)
        return page

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(5)
            now = time.monotonic()
            for execution in list(self.cursors.values()):
                if execution.expires_at < now and not execution.lock.locked():
                    await self._abort(execution, "expired")
