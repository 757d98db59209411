"""`/tables`: what the catalog (Hive Metastore, through Trino) knows about the lake's tables."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from thrift.Thrift import TException
from trino.exceptions import TrinoQueryError

from api.deps import ApiKeyDep, EngineDep, SettingsDep
from api.engine import NOT_FOUND as TRINO_NOT_FOUND
from api.engine import Execution
from api.errors import INVALID, RATE_LIMITED, TIMEOUT, UNAUTHORIZED, UNAVAILABLE, URI_TOO_LONG, ApiError, Error
from api.models import TableColumn, TableDetail, TableList, TableRef
from lakelab.settings import Settings
from services.metastore import client as metastore

router = APIRouter(tags=["tables"])

NAME = r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$"
PARTITIONS_SHOWN = 1000
CatalogParam = Annotated[str, Query(pattern=NAME, description="Trino catalog: `hive` or `hudi`")]
NOT_FOUND = {404: {"model": Error, "description": "no such catalog, schema or table"}}


def _q(*parts: str) -> str:
    return ".".join(f'"{p}"' for p in parts)  # the NAME pattern keeps quotes out


def _not_found(exc: ApiError) -> ApiError:
    if exc.body.trino_error in TRINO_NOT_FOUND or exc.body.trino_error == "UNSUPPORTED_TABLE_TYPE":
        return ApiError(404, "not_found", exc.body.message, trino_error=exc.body.trino_error,
                        query_id=exc.body.query_id)
    return exc


@router.get("/tables", response_model=TableList, summary="List the tables of a catalog",
            responses={**UNAUTHORIZED, **NOT_FOUND, **INVALID, **RATE_LIMITED, **UNAVAILABLE, **TIMEOUT,
                       **URI_TOO_LONG})
async def list_tables(
    request: Request,
    engine: EngineDep,
    owner: ApiKeyDep,
    catalog: CatalogParam = "hive",
    schema: Annotated[str | None, Query(pattern=NAME, description="only this schema")] = None,
) -> TableList:
    where = f"table_schema = '{schema}'" if schema else "table_schema <> 'information_schema'"
    sql = (f"SELECT table_schema, table_name, table_type FROM {_q(catalog, 'information_schema', 'tables')} "
           f"WHERE {where} ORDER BY 1, 2")
    execution = engine.new_execution(sql, "SELECT", owner)
    try:
        rows = await engine.run(execution, lambda: execution.fetch_all(sql), request)
    except ApiError as exc:
        raise _not_found(exc) from exc
    finally:
        execution.abandon()
    return TableList(catalog=catalog, tables=[TableRef(catalog=catalog, schema=s, table=t, type=k) for s, t, k in rows])


@router.get("/tables/{schema}/{table}", response_model=TableDetail, summary="Describe one table",
            description="Columns, partition keys and partitions, storage location and format, row count.",
            responses={**UNAUTHORIZED, **NOT_FOUND, **INVALID, **RATE_LIMITED, **UNAVAILABLE, **TIMEOUT,
                       **URI_TOO_LONG})
async def describe_table(
    request: Request,
    engine: EngineDep,
    owner: ApiKeyDep,
    settings: SettingsDep,
    schema: Annotated[str, Path(pattern=NAME)],
    table: Annotated[str, Path(pattern=NAME)],
    catalog: Annotated[str | None, Query(pattern=NAME, description="Trino catalog; by default `hive`, or `hudi` "
                                                                   "for a Hudi table")] = None,
) -> TableDetail:
    execution = engine.new_execution(f"DESCRIBE {_q(catalog or 'hive', schema, table)}", "DESCRIBE",
                                     owner)
    try:
        return await engine.run(execution, lambda: _describe_any(execution, settings, catalog, schema, table), request)
    except ApiError as exc:
        raise _not_found(exc) from exc
    finally:
        execution.abandon()


def _describe_any(execution: Execution, settings: Settings, catalog: str | None, schema: str,
                  table: str) -> TableDetail:
    if catalog is not None:
        return _describe(execution, settings, catalog, schema, table)
    try:
        return _describe(execution, settings, "hive", schema, table)
    except TrinoQueryError as exc:
        # The hive catalog refuses Hudi tables ("Cannot query Hudi table"): the hudi catalog reads them.
        if exc.error_name != "UNSUPPORTED_TABLE_TYPE":
            raise
        return _describe(execution, settings, "hudi", schema, table)


def _describe(execution: Execution, settings: Settings, catalog: str, schema: str, table: str) -> TableDetail:
    """Runs in a worker thread: the table's metadata, one Trino statement after the other."""
    name = _q(catalog, schema, table)
    columns = [TableColumn(name=c, type=t, partition_key="partition key" in (extra or ""), comment=comment or None)
               for c, t, extra, comment in execution.fetch_all(f"DESCRIBE {name}")]
    keys = [c.name for c in columns if c.partition_key]
    detail = TableDetail(catalog=catalog, schema=schema, table=table, columns=columns, partition_keys=keys)
    warnings = detail.warnings

    def optional(what: str, sql: str, limit: int | None = None) -> list[list[Any]] | None:
        try:
            return execution.fetch_all(sql, limit)
        except Exception as exc:  # noqa: BLE001 - a part we cannot read is reported, not fatal
            message = getattr(exc, "message", None) or str(exc)
            warnings.append(f"{what}: {message[:200]}")
            return None

    # Location and format from the metastore: Trino shows them (SHOW CREATE TABLE) only to a
    # table's owner, which the API's read-only user is not.
    try:
        stored = metastore.get_client(settings).get_table(schema, table)
    except TException as exc:
        stored = None
        warnings.append(f"metastore: {exc}")
    if stored is not None and stored.sd is not None:
        detail.location = stored.sd.location
        detail.format = "HUDI" if catalog == "hudi" else metastore.storage_format(stored)
    if keys:
        # The hive connector lists partitions from the metastore ($partitions); for Hudi tables
        # the distinct values of the partition columns stand in.
        key_list = ", ".join(_q(k) for k in keys)
        source = _q(catalog, schema, f"{table}$partitions") if catalog == "hive" else \
            f"(SELECT DISTINCT {key_list} FROM {name})"
        rows = optional("partitions", f"SELECT {key_list} FROM {source} ORDER BY {key_list}", PARTITIONS_SHOWN)
        if rows is not None:
            detail.partitions = [dict(zip(keys, row)) for row in rows]
            count = optional("partition count", f"SELECT count(*) FROM {source}")
            detail.partition_count = count[0][0] if count else None
    count = optional("row count", f"SELECT count(*) FROM {name}")
    detail.row_count = count[0][0] if count else None
    return detail
