"""Request and response bodies: the OpenAPI schema is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_TEMPLATE_CHARS = 20_000
TOPIC_NAME = r"^[A-Za-z0-9._-]{1,249}$"  # Kafka's rule for topic names


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


# --- the Kinesis Data Generator (/kdg) ------------------------------------------------------------

TemplateText = Field(min_length=1, max_length=MAX_TEMPLATE_CHARS,
                     description="the text of one record with KDG placeholders: JSON (starts with `{`) or any text "
                                 "(a CSV line, a log line)",
                     examples=["{{name.firstName}},{{name.lastName}},{{random.number(70)}},{{internet.ip}}"])


class TemplateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str = TemplateText


class TemplateCheck(BaseModel):
    """A template that parses, with records rendered from it."""

    format: Literal["json", "text"] = Field(description="json: each record is a JSON object; text: each record "
                                                        "is the rendered text as it is")
    samples: list[str] = Field(description="records rendered from the template, as they would be sent")
    fields: list[str] | None = Field(None, description="the record's fields (JSON templates)")


class KdgTemplate(BaseModel):
    name: str = Field(examples=["iot_4", "company_people"])
    format: Literal["json", "text"]
    text: str


class KdgTemplates(BaseModel):
    templates: list[KdgTemplate] = Field(description="the templates shipped in producers/templates")
    placeholders: list[str] = Field(description="the KDG helpers understood by name; any other "
                                                "`{{group.methodName}}` calls the faker method of that name")


class Stream(BaseModel):
    name: str = Field(description="Kafka topic (the Kinesis stream)")
    partitions: int


class KdgJobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str = TemplateText
    stream: str = Field(pattern=TOPIC_NAME, description="an existing topic (see `GET /kdg/streams`)",
                        examples=["iot-events"])
    rate: float = Field(gt=0, description="records per second (at most the server's `max_rate`)", examples=[10])
    count: int | None = Field(None, ge=1, description="stop after this many records; without it, run until stopped")


class KdgJob(BaseModel):
    id: str
    stream: str
    format: Literal["json", "text"]
    state: Literal["running", "finished", "stopped", "failed"] = Field(
        description="finished: `count` records sent; stopped: by a stop request or the API's shutdown")
    sent: int = Field(description="records Kafka acknowledged")
    errors: int = Field(description="records Kafka refused")
    rate: float = Field(description="records acknowledged per second over the last 5 seconds")
    target_rate: float = Field(description="the requested records per second")
    count: int | None = Field(None, description="the requested number of records")
    started_at: datetime
    ended_at: datetime | None = None
    last_error: str | None = None


class KdgJobList(BaseModel):
    jobs: list[KdgJob] = Field(description="this API key's jobs, newest first (running, then recently ended)")
    max_jobs: int = Field(description="jobs one API key may run at a time")
    max_rate: float = Field(description="records per second one job may send at most")


# --- the lake console (/console) ----------------------------------------------------------------

class ServiceState(BaseModel):
    name: str = Field(examples=["s3"])
    stands_for: str = Field(description="the AWS service it replaces", examples=["Amazon S3"])
    endpoint: str
    status: Literal["up", "down"]
    latency_ms: float
    detail: str | None = None


class BucketSummary(BaseModel):
    name: str
    versioning: Literal["Enabled", "Suspended", "Disabled"]
    objects: int = Field(description="current objects (a deleted key of a versioned bucket is not one)")
    bytes: int = Field(description="size of the current objects")
    versions: int = Field(description="object versions and delete markers (= objects when not versioned)")
    truncated: bool = Field(description="true when the listing stopped at the server's cap: counts are lower bounds")


class Folder(BaseModel):
    prefix: str = Field(description="the folder's full prefix, ending with /")
    objects: int
    bytes: int
    versions: int


class ObjectEntry(BaseModel):
    key: str
    size: int | None = Field(None, description="the current version's size; null when deleted")
    last_modified: datetime
    versions: int = Field(description="versions and delete markers of the key (1 when not versioned)")
    deleted: bool = Field(False, description="the latest version is a delete marker")


class BucketListing(BaseModel):
    bucket: str
    prefix: str
    versioning: Literal["Enabled", "Suspended", "Disabled"]
    folders: list[Folder] = Field(description="the next level of folders under the prefix, with what they hold")
    objects: list[ObjectEntry] = Field(description="the objects directly under the prefix")
    truncated: bool = Field(description="true when the listing stopped at the server's cap")


class PartitionOffsets(BaseModel):
    partition: int
    earliest: int = Field(description="oldest offset still kept")
    latest: int = Field(description="the next offset to be written (the high watermark)")
    last_minute: int = Field(description="messages written in the last 60 seconds")


class TopicState(BaseModel):
    name: str
    partitions: list[PartitionOffsets]
    messages: int = Field(description="messages kept, over all partitions")
    latest: int = Field(description="sum of the partitions' latest offsets: messages ever written")
    last_minute: int = Field(description="messages written in the last 60 seconds")
    rate: float = Field(description="messages per second over the last 60 seconds")
