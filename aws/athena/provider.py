"""Amazon Athena over Trino: queries run asynchronously on Trino's hive catalog (Athena's
AwsDataCatalog), in the UTC session time zone, after Athena's Hive DDL is translated
(aws/athena/sql.py). Results are written to the output location as Athena writes them
(aws/athena/results.py) before the query is SUCCEEDED; GetQueryResults pages them with the header
row first for SELECT. Metadata operations read the Glue catalog (aws/glue/catalog.py).

Query executions and workgroups live in PostgreSQL (aws/gateway/store.py): an execution row is
written when the query is accepted and when it ends, so the history outlives the endpoint; a query
that was still running when the endpoint stopped is FAILED when it starts again. A retried
StartQueryExecution with the same ClientRequestToken (boto3 sends one) returns the first query's
id instead of running it twice.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

import sqlglot.errors
import sqlglot.tokens
from botocore.exceptions import BotoCoreError, ClientError
from trino.exceptions import TrinoExternalError, TrinoQueryError, TrinoUserError

from aws.athena.results import (
    athena_text, column_info, csv_bytes, metadata_bytes, parsed_type, read_csv, read_text, text_bytes,
)
from aws.athena.sql import Statement, TranslationError, translate
from aws.gateway.errors import AwsError
from aws.gateway.provider import Provider, RequestContext
from aws.gateway.store import Store, jsonb
from aws.glue.catalog import Catalog, matching
from lakelab.settings import Settings
from services.s3.client import get_client as s3_client
from services.s3.client import parse_uri
from services.trino.client import get_client as trino_connection

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS athena_workgroups (
    name          text PRIMARY KEY,
    state         text NOT NULL DEFAULT 'ENABLED',
    description   text,
    configuration jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO athena_workgroups (name, configuration) VALUES ('primary', '{}') ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS athena_query_executions (
    id                   text PRIMARY KEY,
    client_request_token text UNIQUE,
    workgroup            text NOT NULL,
    query                text NOT NULL,
    statement_type       text NOT NULL,
    substatement_type    text NOT NULL,
    context              jsonb NOT NULL,
    output_location      text NOT NULL,
    state                text NOT NULL,
    state_change_reason  text,
    athena_error         jsonb,
    statistics           jsonb,
    columns              jsonb,  -- ColumnInfo of the result
    update_count         bigint,
    submitted_at         timestamptz NOT NULL,
    completed_at         timestamptz
);
CREATE INDEX IF NOT EXISTS athena_query_executions_listing ON athena_query_executions (workgroup, submitted_at DESC);
"""
DATA_CATALOG = "AwsDataCatalog"
TRINO_CATALOG = "hive"
FINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")
ENGINE_VERSION = {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"}
KEPT_RESULTS = 64  # results of the latest queries kept in memory for GetQueryResults
MAX_PAGE = 1000
TRINO_REQUEST_TIMEOUT_S = 300
CANCEL_WAIT_S = 5.0  # StopQueryExecution waits this long for a query being submitted to have a Trino id
DML_KEYWORDS = {"SELECT", "WITH", "VALUES", "TABLE", "INSERT", "UPDATE", "DELETE", "MERGE", "UNLOAD"}
UTILITY_KEYWORDS = {"SHOW", "DESCRIBE", "DESC", "EXPLAIN", "USE"}


def _invalid(message: str) -> AwsError:
    return AwsError("InvalidRequestException", message)


def _millis(start: float, end: float) -> int:
    return max(0, round((end - start) * 1000))


def statement_types(sql: str) -> tuple[str, str]:
    """Athena's (StatementType, SubstatementType) of a query: DML, DDL or UTILITY."""
    words = re.findall(r"[A-Za-z_]+", re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.DOTALL).upper())[:4]
    first = words[0] if words else ""
    if first in ("SELECT", "WITH", "VALUES", "TABLE"):
        return "DML", "SELECT"
    if first == "CREATE" and re.search(r"\)\s*AS\s|\bAS\s+(SELECT|WITH)\b", sql, flags=re.IGNORECASE) \
            and "VIEW" not in words[:3]:
        return "DML", "CREATE_TABLE_AS_SELECT"
    if first in DML_KEYWORDS:
        return "DML", first
    kind = "UTILITY" if first in UTILITY_KEYWORDS else "DDL"
    return kind, "_".join(words[:3] if first == "MSCK" else words[:2])


def with_parameters(sql: str, parameters: list[str]) -> str:
    """Athena's ExecutionParameters (SQL literals) in place of the query's `?` placeholders."""
    try:
        tokens = sqlglot.tokens.Tokenizer().tokenize(sql)
    except sqlglot.errors.TokenError as exc:
        raise _invalid(f"The query cannot be read to place its parameters: {str(exc).splitlines()[0]}") from None
    placeholders = [t for t in tokens if t.token_type == sqlglot.tokens.TokenType.PLACEHOLDER]
    if len(placeholders) != len(parameters):
        raise _invalid(f"The query has {len(placeholders)} parameter placeholders but {len(parameters)} "
                       "ExecutionParameters were given.")
    for token, value in sorted(zip(placeholders, parameters), key=lambda pair: -pair[0].start):
        sql = sql[:token.start] + value + sql[token.end + 1:]
    return sql


@dataclass
class Execution:
    """One query execution, as GetQueryExecution describes it."""

    id: str
    workgroup: str
    query: str
    statement_type: str
    substatement_type: str
    context: dict
    output_location: str
    submitted_at: datetime
    state: str = "QUEUED"
    state_change_reason: str | None = None
    athena_error: dict | None = None
    statistics: dict = field(default_factory=dict)
    columns: list[dict] | None = None
    update_count: int | None = None
    completed_at: datetime | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    cursor: object | None = None

    @property
    def result_key_suffix(self) -> str:
        return ".csv" if self.statement_type == "DML" else ".txt"

    @property
    def result_uri(self) -> str:
        return f"{self.output_location.rstrip('/')}/{self.id}{self.result_key_suffix}"

    def described(self) -> dict:
        status = {"State": self.state, "SubmissionDateTime": self.submitted_at}
        if self.state_change_reason:
            status["StateChangeReason"] = self.state_change_reason
        if self.completed_at:
            status["CompletionDateTime"] = self.completed_at
        if self.athena_error:
            status["AthenaError"] = self.athena_error
        statistics = {"ResultReuseInformation": {"ReusedPreviousResult": False}, **self.statistics}
        return {
            "QueryExecutionId": self.id, "Query": self.query, "StatementType": self.statement_type,
            "SubstatementType": self.substatement_type,
            "ResultConfiguration": {"OutputLocation": self.result_uri},
            "ResultReuseConfiguration": {"ResultReuseByAgeConfiguration": {"Enabled": False}},
            "QueryExecutionContext": self.context, "Status": status, "Statistics": statistics,
            "WorkGroup": self.workgroup, "EngineVersion": ENGINE_VERSION,
        }


class AthenaProvider(Provider):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.store = Store(settings, SCHEMA)
        self.catalog = Catalog(settings)
        self.s3 = s3_client(settings)
        self._pool = ThreadPoolExecutor(settings.athena_max_concurrent_queries, thread_name_prefix="athena")
        self._executions: OrderedDict[str, Execution] = OrderedDict()  # of this process, newest last
        self._results: OrderedDict[str, list[list[str | None]]] = OrderedDict()
        self._lock = threading.Lock()
        self.store.rows("UPDATE athena_query_executions SET state = 'FAILED', completed_at = clock_timestamp(), "
                        "state_change_reason = 'The endpoint stopped while this query ran; run it again.', "
                        "athena_error = %s WHERE state NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED')",
                        (jsonb({"ErrorCategory": 1, "ErrorType": 100, "Retryable": True,
                                "ErrorMessage": "The endpoint stopped while this query ran."}),))

    def close(self) -> None:
        with self._lock:
            running = list(self._executions.values())
        for execution in running:
            if execution.state not in FINAL_STATES:
                self._cancel(execution, wait_s=0)  # a query must not outlive the endpoint in Trino
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.store.close()

    # -- queries -----------------------------------------------------------------------------------

    def start_query_execution(self, context: RequestContext, params: dict) -> dict:
        workgroup_name = params.get("WorkGroup", "primary")
        workgroup = self._workgroup(workgroup_name)
        if workgroup["State"] != "ENABLED":
            raise _invalid(f"WorkGroup {workgroup_name} is disabled.")
        configuration = workgroup["Configuration"]
        own = configuration.get("ResultConfiguration", {}).get("OutputLocation")
        given = params.get("ResultConfiguration", {}).get("OutputLocation")
        output = own if configuration.get("EnforceWorkGroupConfiguration") and own else given or own
        if not output:
            raise _invalid("No output location provided. An output location is required either through the "
                           "Workgroup result configuration setting or as an API input.")
        try:
            parse_uri(output)
        except ValueError:
            raise _invalid(f"outputLocation {output} is not a valid S3 path (s3://bucket/prefix/).") from None
        query_context = {"Catalog": DATA_CATALOG, "Database": "default", **params.get("QueryExecutionContext", {})}
        if query_context["Catalog"].lower() != DATA_CATALOG.lower():
            raise _invalid(f"Catalog {query_context['Catalog']} is not a data catalog here: only {DATA_CATALOG} "
                           "(the metastore).")
        sql = params["QueryString"]
        if params.get("ExecutionParameters"):
            sql = with_parameters(sql, params["ExecutionParameters"])
        token = params.get("ClientRequestToken")
        if token:
            earlier = self.store.rows("SELECT id, query FROM athena_query_executions WHERE client_request_token = %s",
                                      (token,))
            if earlier:
                if earlier[0][1] != params["QueryString"]:
                    raise _invalid("Idempotent parameters do not match")
                return {"QueryExecutionId": earlier[0][0]}
        statement_type, substatement_type = statement_types(sql)
        execution = Execution(str(uuid.uuid4()), workgroup_name, params["QueryString"], statement_type,
                              substatement_type, query_context, output, datetime.now(timezone.utc))
        self.store.rows(
            "INSERT INTO athena_query_executions (id, client_request_token, workgroup, query, statement_type, "
            "substatement_type, context, output_location, state, submitted_at) VALUES (%s, %s, %s, %s, %s, %s, %s, "
            "%s, 'QUEUED', %s)", (execution.id, token, workgroup_name, execution.query, statement_type,
                                  substatement_type, jsonb(query_context), output, execution.submitted_at))
        with self._lock:
            self._executions[execution.id] = execution
        self._pool.submit(self._run_or_fail, execution, sql, time.monotonic())
        return {"QueryExecutionId": execution.id}

    def get_query_execution(self, context: RequestContext, params: dict) -> dict:
        return {"QueryExecution": self._execution(params["QueryExecutionId"]).described()}

    def batch_get_query_execution(self, context: RequestContext, params: dict) -> dict:
        found, missing = [], []
        for query_id in params["QueryExecutionIds"]:
            try:
                found.append(self._execution(query_id).described())
            except AwsError as error:
                missing.append({"QueryExecutionId": query_id, "ErrorCode": error.code, "ErrorMessage": error.message})
        return {"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing}

    def list_query_executions(self, context: RequestContext, params: dict) -> dict:
        workgroup = params.get("WorkGroup", "primary")
        self._workgroup(workgroup)
        start = self._offset(params)
        size = params.get("MaxResults", 50)
        rows = self.store.rows("SELECT id FROM athena_query_executions WHERE workgroup = %s ORDER BY submitted_at "
                               "DESC, id OFFSET %s LIMIT %s", (workgroup, start, size + 1))
        return {"QueryExecutionIds": [row[0] for row in rows[:size]],
                "NextToken": self._token(start + size) if len(rows) > size else None}

    def stop_query_execution(self, context: RequestContext, params: dict) -> dict:
        execution = self._execution(params["QueryExecutionId"])
        if execution.state in FINAL_STATES:
            return {}
        self._cancel(execution, wait_s=CANCEL_WAIT_S)
        return {}

    def _cancel(self, execution: Execution, wait_s: float) -> None:
        """Mark the execution cancelled and cancel its Trino query. A query being submitted has no
        Trino id yet: wait (up to `wait_s`) until it has one; one not submitted yet never will be
        (`_run` checks the mark before submitting)."""
        execution.cancelled.set()
        deadline = time.monotonic() + wait_s
        while execution.state not in FINAL_STATES:
            cursor = execution.cursor
            if cursor is not None and cursor.query_id:
                try:
                    cursor.cancel()
                except (TrinoQueryError, OSError) as exc:
                    log.warning("query %s: Trino did not take the cancel: %s", execution.id, exc)
                return
            if time.monotonic() >= deadline:
                return
            time.sleep(0.05)

    def get_query_results(self, context: RequestContext, params: dict) -> dict:
        execution = self._execution(params["QueryExecutionId"])
        if execution.state in ("QUEUED", "RUNNING"):
            raise _invalid(f"Query has not yet finished. Current state: {execution.state}")
        if execution.state != "SUCCEEDED":
            raise _invalid(f"Query did not finish successfully. Final query state: {execution.state}"
                           + (f"\n{execution.state_change_reason}" if execution.state_change_reason else ""))
        rows = self._result_rows(execution)
        start = self._offset(params)
        size = params.get("MaxResults", MAX_PAGE)
        page = rows[start:start + size]
        result = {"ResultSet": {"Rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]}
                                         for row in page],
                                "ResultSetMetadata": {"ColumnInfo": execution.columns or []}},
                  "UpdateCount": execution.update_count or 0}
        if start + size < len(rows):
            result["NextToken"] = self._token(start + size)
        return result

    # -- running a query ---------------------------------------------------------------------------

    def _run_or_fail(self, execution: Execution, sql: str, accepted: float) -> None:
        """`_run`; an execution it could not bring to an end is FAILED with the cause, not left RUNNING."""
        try:
            self._run(execution, sql, accepted)
        except Exception as exc:  # noqa: BLE001 - whatever it was, the client polling must see an end
            log.exception("query %s failed in the endpoint", execution.id)
            if execution.state not in FINAL_STATES:
                now = time.monotonic()
                self._finish(execution, "FAILED", accepted, now, now, now,
                             reason=f"GENERIC_INTERNAL_ERROR: {type(exc).__name__}: {exc}", error=(1, 200, False))

    def _run(self, execution: Execution, sql: str, accepted: float) -> None:
        began = time.monotonic()
        if execution.cancelled.is_set():
            self._finish(execution, "CANCELLED", accepted, began, began, began, reason="Query cancelled by user")
            return
        execution.state = "RUNNING"
        schema = execution.context["Database"]
        try:
            statement = translate(Statement(sql), schema)
        except (TranslationError, ValueError) as exc:
            now = time.monotonic()
            self._finish(execution, "FAILED", accepted, began, now, now, reason=f"FAILED: {exc}",
                         error=(2, 1000, False))
            return
        translated = time.monotonic()
        if execution.cancelled.is_set():  # stopped before it reached Trino
            self._finish(execution, "CANCELLED", accepted, began, translated, translated, reason="Query cancelled by user")
            return
        connection = trino_connection(self.settings, TRINO_CATALOG, schema, request_timeout=TRINO_REQUEST_TIMEOUT_S,
                                      timezone="UTC", legacy_primitive_types=True, source="lakelab-athena")
        cursor = connection.cursor()
        execution.cursor = cursor
        try:
            cursor.execute(statement.translated)
            rows = cursor.fetchall()
            description = cursor.description or []
        except TrinoQueryError as exc:
            now = time.monotonic()
            if execution.cancelled.is_set() or exc.error_name == "USER_CANCELED":
                self._finish(execution, "CANCELLED", accepted, began, translated, now, reason="Query cancelled by user")
            else:
                user = isinstance(exc, TrinoUserError)
                retryable = isinstance(exc, TrinoExternalError) or exc.error_type == "INSUFFICIENT_RESOURCES"
                ddl = execution.statement_type == "DDL"
                self._finish(execution, "FAILED", accepted, began, translated, now,
                             reason=f"{exc.error_name}: {exc.message}",
                             error=(2, 1003 if ddl else 1000, False) if user else (1, 200, retryable))
            return
        except Exception as exc:  # noqa: BLE001 - Trino unreachable or the like: the query fails, not the endpoint
            now = time.monotonic()
            log.exception("query %s failed on Trino", execution.id)
            self._finish(execution, "FAILED", accepted, began, translated, now,
                         reason=f"GENERIC_INTERNAL_ERROR: {exc}", error=(1, 200, True))
            return
        finally:
            execution.cursor = None
            connection.close()
        engine_done = time.monotonic()
        execution.statistics["DataScannedInBytes"] = int((cursor.stats or {}).get("physicalInputBytes") or 0)
        execution.statistics["QueryPlanningTimeInMillis"] = int((cursor.stats or {}).get("planningTimeMillis") or 0)
        try:
            self._write_results(execution, statement, description, rows)
        except (BotoCoreError, ClientError, ValueError) as exc:
            now = time.monotonic()
            self._finish(execution, "FAILED", accepted, began, translated, engine_done,
                         reason=f"Unable to write query results to {execution.result_uri}: {exc}",
                         error=(2, 401, False), written=now)
            return
        self._finish(execution, "SUCCEEDED", accepted, began, translated, engine_done, written=time.monotonic())

    def _write_results(self, execution: Execution, statement: Statement, description: list, rows: list) -> None:
        columns = [column_info(d.name, d.type_code) for d in description]
        types = [parsed_type(d.type_code) for d in description]
        texts = [[athena_text(value, kind) for value, kind in zip(row, types)] for row in rows]
        if execution.statement_type == "DML":
            if execution.substatement_type != "SELECT" and len(rows) == 1 and len(rows[0]) == 1:
                execution.update_count = int(rows[0][0] or 0)  # rows written, as Trino answers a write
            body, kept = csv_bytes([c["Name"] for c in columns], texts), [[c["Name"] for c in columns], *texts]
        else:
            body, kept = text_bytes(texts), texts
        bucket, key = parse_uri(execution.result_uri)
        self.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/csv")
        self.s3.put_object(Bucket=bucket, Key=f"{key}.metadata", Body=metadata_bytes(columns))
        if execution.substatement_type == "CREATE_TABLE_AS_SELECT":
            self._write_manifest(execution, statement)
        execution.columns = columns
        with self._lock:
            self._results[execution.id] = kept
            while len(self._results) > KEPT_RESULTS:
                self._results.popitem(last=False)

    def _write_manifest(self, execution: Execution, statement: Statement) -> None:
        """Athena's `<id>-manifest.csv` of a CTAS: the data files the new table holds."""
        created = re.search(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?((?:\"[^\"]+\"|\w+)(?:\.(?:\"[^\"]+\"|\w+))*)",
                            statement.translated, flags=re.IGNORECASE)
        parts = [p.strip('"') for p in re.findall(r"\"[^\"]+\"|\w+", created.group(1))] if created else []
        database = parts[-2] if len(parts) > 1 else execution.context["Database"]
        location = self.catalog.table(database, parts[-1])["StorageDescriptor"]["Location"]
        bucket, prefix = parse_uri(location.rstrip("/") + "/")
        files = [f"s3://{bucket}/{item['Key']}"
                 for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                 for item in page.get("Contents", []) if not item["Key"].endswith("/") and item["Size"] > 0]
        out_bucket, out_key = parse_uri(f"{execution.output_location.rstrip('/')}/{execution.id}-manifest.csv")
        self.s3.put_object(Bucket=out_bucket, Key=out_key, Body="".join(f"{f}\n" for f in files).encode())
        execution.statistics["DataManifestLocation"] = f"s3://{out_bucket}/{out_key}"

    def _finish(self, execution: Execution, state: str, accepted: float, began: float, translated: float,
                engine_done: float, reason: str | None = None, error: tuple[int, int, bool] | None = None,
                written: float | None = None) -> None:
        done = written or engine_done
        execution.statistics |= {
            "QueryQueueTimeInMillis": _millis(accepted, began),
            "ServicePreProcessingTimeInMillis": _millis(began, translated),
            "EngineExecutionTimeInMillis": _millis(translated, engine_done),
            "ServiceProcessingTimeInMillis": _millis(engine_done, done),
            "TotalExecutionTimeInMillis": _millis(accepted, done),
        }
        execution.statistics.setdefault("DataScannedInBytes", 0)
        execution.state_change_reason = reason
        if error is not None:
            category, kind, retryable = error
            execution.athena_error = {"ErrorCategory": category, "ErrorType": kind, "Retryable": retryable,
                                      "ErrorMessage": reason}
        execution.completed_at = datetime.now(timezone.utc)
        self.store.rows(
            "UPDATE athena_query_executions SET state = %s, state_change_reason = %s, athena_error = %s, "
            "statistics = %s, columns = %s, update_count = %s, completed_at = %s WHERE id = %s",
            (state, reason, jsonb(execution.athena_error), jsonb(execution.statistics), jsonb(execution.columns),
             execution.update_count, execution.completed_at, execution.id))
        execution.state = state  # last: a client seeing SUCCEEDED finds the results and the row in place
        if state == "FAILED":
            log.info("query %s failed: %s", execution.id, reason)

    # -- what is kept ------------------------------------------------------------------------------

    def _execution(self, query_id: str) -> Execution:
        with self._lock:
            execution = self._executions.get(query_id)
        if execution is not None:
            return execution
        rows = self.store.rows(
            "SELECT workgroup, query, statement_type, substatement_type, context, output_location, state, "
            "state_change_reason, athena_error, statistics, columns, update_count, submitted_at, completed_at "
            "FROM athena_query_executions WHERE id = %s", (query_id,))
        if not rows:
            raise _invalid(f"QueryExecution {query_id} was not found")
        (workgroup, query, statement_type, substatement_type, query_context, output, state, reason, error, statistics,
         columns, update_count, submitted_at, completed_at) = rows[0]
        return Execution(query_id, workgroup, query, statement_type, substatement_type, query_context, output,
                         submitted_at, state, reason, error, statistics or {}, columns, update_count, completed_at)

    def _result_rows(self, execution: Execution) -> list[list[str | None]]:
        with self._lock:
            kept = self._results.get(execution.id)
        if kept is not None:
            return kept
        bucket, key = parse_uri(execution.result_uri)
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            raise _invalid(f"The results of query {execution.id} are no longer at {execution.result_uri} "
                           f"({exc.response['Error'].get('Code')}).") from exc
        return read_csv(body) if execution.statement_type == "DML" else read_text(body)

    @staticmethod
    def _token(offset: int) -> str:
        return base64.b64encode(str(offset).encode()).decode()

    @staticmethod
    def _offset(params: dict) -> int:
        if not params.get("NextToken"):
            return 0
        try:
            return int(base64.b64decode(params["NextToken"], validate=True))
        except ValueError:
            raise _invalid("Invalid NextToken.") from None

    # -- workgroups --------------------------------------------------------------------------------

    def _workgroup(self, name: str) -> dict:
        rows = self.store.rows("SELECT state, description, configuration, created_at FROM athena_workgroups "
                               "WHERE name = %s", (name,))
        if not rows:
            raise _invalid(f"WorkGroup {name} is not found.")
        state, description, configuration, created = rows[0]
        workgroup = {"Name": name, "State": state, "CreationTime": created,
                     "Configuration": {"EnforceWorkGroupConfiguration": False, "PublishCloudWatchMetricsEnabled": False,
                                       "RequesterPaysEnabled": False, "EngineVersion": ENGINE_VERSION,
                                       **configuration}}
        if description:
            workgroup["Description"] = description
        return workgroup

    def create_work_group(self, context: RequestContext, params: dict) -> dict:
        configuration = {k: v for k, v in params.get("Configuration", {}).items() if k != "EngineVersion"}
        rows = self.store.rows("INSERT INTO athena_workgroups (name, description, configuration) VALUES (%s, %s, %s) "
                               "ON CONFLICT DO NOTHING RETURNING name",
                               (params["Name"], params.get("Description"), jsonb(configuration)))
        if not rows:
            raise _invalid(f"WorkGroup {params['Name']} is already created")
        return {}

    def get_work_group(self, context: RequestContext, params: dict) -> dict:
        return {"WorkGroup": self._workgroup(params["WorkGroup"])}

    def list_work_groups(self, context: RequestContext, params: dict) -> dict:
        rows = self.store.rows("SELECT name, state, description, created_at FROM athena_workgroups ORDER BY name")
        summaries = [{"Name": name, "State": state, "CreationTime": created, "EngineVersion": ENGINE_VERSION,
                      **({"Description": description} if description else {})}
                     for name, state, description, created in rows]
        return {"WorkGroups": summaries}

    def update_work_group(self, context: RequestContext, params: dict) -> dict:
        name = params["WorkGroup"]
        configuration = {k: v for k, v in self._workgroup(name)["Configuration"].items() if k != "EngineVersion"}
        updates = dict(params.get("ConfigurationUpdates", {}))
        result_updates = updates.pop("ResultConfigurationUpdates", {})
        result = dict(configuration.get("ResultConfiguration", {}))
        for key, value in result_updates.items():
            if key.startswith("Remove") and value:
                result.pop(key.removeprefix("Remove"), None)
            elif not key.startswith("Remove"):
                result[key] = value
        if updates.pop("RemoveBytesScannedCutoffPerQuery", False):
            configuration.pop("BytesScannedCutoffPerQuery", None)
        configuration |= {k: v for k, v in updates.items() if k != "EngineVersion" and not k.startswith("Remove")}
        configuration["ResultConfiguration"] = result
        self.store.rows("UPDATE athena_workgroups SET configuration = %s, description = coalesce(%s, description), "
                        "state = coalesce(%s, state) WHERE name = %s",
                        (jsonb(configuration), params.get("Description"), params.get("State"), name))
        return {}

    def delete_work_group(self, context: RequestContext, params: dict) -> dict:
        name = params["WorkGroup"]
        if name == "primary":
            raise _invalid("Cannot delete the primary workgroup")
        self._workgroup(name)
        self.store.rows("DELETE FROM athena_workgroups WHERE name = %s", (name,))
        return {}

    # -- catalogs, databases, tables ---------------------------------------------------------------

    @staticmethod
    def _data_catalog(name: str) -> None:
        if name.lower() != DATA_CATALOG.lower():
            raise AwsError("MetadataException", f"Catalog {name} does not exist; the one data catalog here is "
                                                f"{DATA_CATALOG} (the metastore).")

    def list_data_catalogs(self, context: RequestContext, params: dict) -> dict:
        return {"DataCatalogsSummary": [{"CatalogName": DATA_CATALOG, "Type": "GLUE", "Status": "CREATE_COMPLETE"}]}

    def get_data_catalog(self, context: RequestContext, params: dict) -> dict:
        self._data_catalog(params["Name"])
        return {"DataCatalog": {"Name": DATA_CATALOG, "Type": "GLUE", "Parameters": {"catalog-id": context.account_id},
                                "Status": "CREATE_COMPLETE"}}

    def list_databases(self, context: RequestContext, params: dict) -> dict:
        self._data_catalog(params["CatalogName"])
        names = self.catalog.database_names()
        start = self._offset(params)
        size = params.get("MaxResults", 50)
        return {"DatabaseList": [{"Name": name} for name in names[start:start + size]],
                "NextToken": self._token(start + size) if start + size < len(names) else None}

    def get_database(self, context: RequestContext, params: dict) -> dict:
        self._data_catalog(params["CatalogName"])
        self._glue(self.catalog.database, params["DatabaseName"])
        return {"Database": {"Name": params["DatabaseName"]}}

    def list_table_metadata(self, context: RequestContext, params: dict) -> dict:
        self._data_catalog(params["CatalogName"])
        try:
            names = matching(self._glue(self.catalog.table_names, params["DatabaseName"]), params.get("Expression"))
        except ValueError as exc:
            raise _invalid(str(exc)) from None
        start = self._offset(params)
        size = params.get("MaxResults", 50)
        tables = self.catalog.tables(params["DatabaseName"], names[start:start + size])
        return {"TableMetadataList": [self._table_metadata(t) for t in tables],
                "NextToken": self._token(start + size) if start + size < len(names) else None}

    def get_table_metadata(self, context: RequestContext, params: dict) -> dict:
        self._data_catalog(params["CatalogName"])
        table = self._glue(self.catalog.table, params["DatabaseName"], params["TableName"])
        return {"TableMetadata": self._table_metadata(table)}

    @staticmethod
    def _glue(read, *args):
        """A catalog read whose not-found is Athena's MetadataException."""
        try:
            return read(*args)
        except AwsError as error:
            if error.code == "EntityNotFoundException":
                raise AwsError("MetadataException", error.message) from None
            raise

    @staticmethod
    def _table_metadata(table: dict) -> dict:
        descriptor = table["StorageDescriptor"]
        parameters = {"location": descriptor["Location"], "inputformat": descriptor["InputFormat"],
                      "outputformat": descriptor["OutputFormat"],
                      "serde.serialization.lib": descriptor["SerdeInfo"]["SerializationLibrary"],
                      **table["Parameters"]}
        metadata = {"Name": table["Name"], "TableType": table["TableType"], "Columns": descriptor["Columns"],
                    "PartitionKeys": table["PartitionKeys"], "Parameters": parameters}
        if "CreateTime" in table:
            metadata["CreateTime"] = table["CreateTime"]
        return metadata
