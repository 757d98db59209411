"""Request and response bodies: the OpenAPI schema is generated from these."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Column(BaseModel):
    name: str = Field(description="column name; repeated names get a `_2`, `_3`... suffix", examples=["location"])
    type: str = Field(description="Trino type", examples=["varchar", "decimal(10, 2)"])


class QueryRequest(BaseModel):
    """Either `query` (start a query) or `token` (the next page of an earlier one)."""

    model_config = ConfigDict(extra="forbid")

    query: str | None = Field(None, description="one read-only SQL statement (Trino dialect; 100,000 characters "
                                                "at most by default)",
                              examples=["SELECT location, sum(total_sales) AS sales FROM hive.default.sales GROUP BY 1"])
    token: str | None = Field(None, max_length=200, description="`next_token` of the previous page")
    page_size: int | None = Field(None, ge=1, description="rows per page; capped by the server's row cap")


class QueryPage(BaseModel):
    query: str = Field(description="the SQL that ran")
    statement_type: str = Field(description="SELECT, WITH, VALUES, SHOW, DESCRIBE or EXPLAIN ...", examples=["SELECT"])
    query_id: str | None = Field(None, description="Trino's query id")
    columns: list[Column]
    results: list[dict[str, Any]] = Field(description="rows as objects keyed by column name; values are "
                                                       "Trino's JSON encoding (decimals and timestamps as strings)")
    row_count: int = Field(description="rows in this page")
    page: int = Field(description="0 for the first page")
    next_token: str | None = Field(None, description="pass as `token` to get the next page; null on the last page")
    truncated: bool = Field(False, description="true when the result was cut at the server's total row cap")
    elapsed_ms: float = Field(description="time spent by the API on this page")


class TableRef(BaseModel):
    catalog: str
    schema_: str = Field(alias="schema", serialization_alias="schema")
    table: str
    type: str = Field(description="BASE TABLE or VIEW")

    model_config = ConfigDict(populate_by_name=True)


class TableList(BaseModel):
    catalog: str
    tables: list[TableRef]


class TableColumn(BaseModel):
    name: str
    type: str
    partition_key: bool = False
    comment: str | None = None


class TableDetail(BaseModel):
    catalog: str
    schema_: str = Field(alias="schema", serialization_alias="schema")
    table: str
    columns: list[TableColumn]
    partition_keys: list[str]
    partitions: list[dict[str, Any]] | None = Field(None, description="partition values (first ones only if many)")
    partition_count: int | None = None
    location: str | None = Field(None, description="storage location (s3a://...)")
    format: str | None = Field(None, description="storage format: PARQUET, ORC, JSON, HUDI ...")
    row_count: int | None = None
    warnings: list[str] = Field(default_factory=list, description="parts that could not be read")

    model_config = ConfigDict(populate_by_name=True)


class ServiceHealth(BaseModel):
    status: Literal["up", "down"]
    latency_ms: float
    detail: str | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="ok when every backing service is up; the API "
                                                          "itself answers either way")
    services: dict[str, ServiceHealth]
