"""AWS Glue: the Data Catalog over the metastore (aws/glue/catalog.py) and crawlers run by the
crawler stand-in (aws/glue/crawler.py) in a thread of the endpoint.

Crawler definitions and their last crawl live in PostgreSQL (aws/gateway/store.py) so they outlive
the endpoint; a crawl that was running when the endpoint stopped is marked FAILED when it starts
again. A crawler crawls its S3 targets (JDBC and other targets are refused) into tables named
TablePrefix + the target folder's name, as Glue names them."""

from __future__ import annotations

import base64
import logging
import threading
import uuid
from datetime import datetime, timezone

from aws.gateway.errors import AwsError
from aws.gateway.provider import Provider, RequestContext
from aws.gateway.store import Store, jsonb
from aws.glue.catalog import Catalog, matching, not_found
from aws.glue.crawler import CrawlError, crawl
from lakelab.settings import Settings

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS glue_crawlers (
    name        text PRIMARY KEY,
    request     jsonb NOT NULL,  -- the CreateCrawler parameters, as sent
    state       text NOT NULL DEFAULT 'READY',
    started_at  timestamptz,
    last_crawl  jsonb,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""
LOG_GROUP = "/aws-glue/crawlers"


def _page(items: list, params: dict, default_size: int) -> tuple[list, str | None]:
    """One page of `items` after the params' NextToken, and the token of the next page."""
    start = 0
    if params.get("NextToken"):
        try:
            start = int(base64.b64decode(params["NextToken"]))
        except ValueError:
            raise AwsError("InvalidInputException", "Invalid NextToken.") from None
    size = params.get("MaxResults", default_size)
    end = start + size
    return items[start:end], base64.b64encode(str(end).encode()).decode() if end < len(items) else None


class GlueProvider(Provider):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.catalog = Catalog(settings)
        self.store = Store(settings, SCHEMA)
        interrupted = {"Status": "FAILED", "ErrorMessage": "The endpoint stopped during this crawl; start the "
                                                           "crawler again.", "LogGroup": LOG_GROUP}
        self.store.rows("UPDATE glue_crawlers SET state = 'READY', last_crawl = %s || jsonb_build_object("
                        "'StartTime', extract(epoch FROM started_at)) WHERE state <> 'READY'", (jsonb(interrupted),))

    def close(self) -> None:
        self.store.close()

    # -- databases ---------------------------------------------------------------------------------

    def get_databases(self, context: RequestContext, params: dict) -> dict:
        page, token = _page(self.catalog.databases(), params, 100)
        return {"DatabaseList": [self._in_account(context, d) for d in page], "NextToken": token}

    def get_database(self, context: RequestContext, params: dict) -> dict:
        return {"Database": self._in_account(context, self.catalog.database(params["Name"]))}

    def create_database(self, context: RequestContext, params: dict) -> dict:
        database = params["DatabaseInput"]
        self.catalog.create_database(database["Name"], database.get("LocationUri"))
        return {}

    def delete_database(self, context: RequestContext, params: dict) -> dict:
        self.catalog.database(params["Name"])
        self.catalog.delete_database(params["Name"])
        return {}

    # -- tables ------------------------------------------------------------------------------------

    def get_tables(self, context: RequestContext, params: dict) -> dict:
        try:
            names = matching(self.catalog.table_names(params["DatabaseName"]), params.get("Expression"))
        except ValueError as exc:
            raise AwsError("InvalidInputException", str(exc)) from None
        page, token = _page(names, params, 100)
        tables = self.catalog.tables(params["DatabaseName"], page)
        return {"TableList": [self._in_account(context, t) for t in tables], "NextToken": token}

    def get_table(self, context: RequestContext, params: dict) -> dict:
        return {"Table": self._in_account(context, self.catalog.table(params["DatabaseName"], params["Name"]))}

    def create_table(self, context: RequestContext, params: dict) -> dict:
        self.catalog.create_table(params["DatabaseName"], params["TableInput"])
        return {}

    def update_table(self, context: RequestContext, params: dict) -> dict:
        self.catalog.update_table(params["DatabaseName"], params["TableInput"])
        return {}

    def delete_table(self, context: RequestContext, params: dict) -> dict:
        self.catalog.delete_table(params["DatabaseName"], params["Name"])
        return {}

    def get_partitions(self, context: RequestContext, params: dict) -> dict:
        partitions = self.catalog.partitions(params["DatabaseName"], params["TableName"], params.get("Expression"))
        page, token = _page(partitions, params, 1000)
        return {"Partitions": [self._in_account(context, p) for p in page], "NextToken": token}

    def batch_create_partition(self, context: RequestContext, params: dict) -> dict:
        errors = self.catalog.create_partitions(params["DatabaseName"], params["TableName"],
                                                params["PartitionInputList"])
        return {"Errors": errors}

    @staticmethod
    def _in_account(context: RequestContext, item: dict) -> dict:
        return {**item, "CatalogId": context.account_id}

    # -- crawlers ----------------------------------------------------------------------------------

    def create_crawler(self, context: RequestContext, params: dict) -> dict:
        targets = params["Targets"]
        unsupported = [kind for kind, items in targets.items() if items and kind != "S3Targets"]
        if unsupported or not targets.get("S3Targets"):
            raise AwsError("InvalidInputException", "lakelab's crawlers crawl S3Targets only"
                                                    + (f", not {', '.join(unsupported)}." if unsupported else "."))
        if "DatabaseName" not in params:
            raise AwsError("InvalidInputException", "DatabaseName is required: the crawler's tables go there.")
        self.catalog.database(params["DatabaseName"])
        rows = self.store.rows("INSERT INTO glue_crawlers (name, request) VALUES (%s, %s) ON CONFLICT DO NOTHING "
                               "RETURNING name", (params["Name"], jsonb(params)))
        if not rows:
            raise AwsError("AlreadyExistsException", f"{params['Name']} already exists")
        return {}

    def get_crawler(self, context: RequestContext, params: dict) -> dict:
        crawlers = self._crawlers(params["Name"])
        if not crawlers:
            raise not_found(f"Crawler with name {params['Name']}")
        return {"Crawler": crawlers[0]}

    def get_crawlers(self, context: RequestContext, params: dict) -> dict:
        page, token = _page(self._crawlers(), params, 100)
        return {"Crawlers": page, "NextToken": token}

    def delete_crawler(self, context: RequestContext, params: dict) -> dict:
        rows = self.store.rows("DELETE FROM glue_crawlers WHERE name = %s AND state = 'READY' RETURNING name",
                               (params["Name"],))
        if not rows:
            self.get_crawler(context, params)
            raise AwsError("CrawlerRunningException", f"Crawler with name {params['Name']} is running.")
        return {}

    def start_crawler(self, context: RequestContext, params: dict) -> dict:
        name = params["Name"]
        rows = self.store.rows("UPDATE glue_crawlers SET state = 'RUNNING', started_at = clock_timestamp(), "
                               "updated_at = clock_timestamp() WHERE name = %s AND state = 'READY' RETURNING request",
                               (name,))
        if not rows:
            self.get_crawler(context, params)  # EntityNotFoundException for an unknown crawler
            raise AwsError("CrawlerRunningException", f"Crawler with name {name} has already started")
        threading.Thread(target=self._crawl, args=(name, rows[0][0]), name=f"crawler-{name}", daemon=True).start()
        return {}

    def _crawl(self, name: str, request: dict) -> None:
        started = datetime.now(timezone.utc)
        outcome = {"Status": "SUCCEEDED", "LogGroup": LOG_GROUP, "LogStream": name,
                   "MessagePrefix": str(uuid.uuid4()), "StartTime": started.timestamp()}
        try:
            for target in request["Targets"]["S3Targets"]:
                result = crawl(self.settings, target["Path"], request["DatabaseName"], request.get("TablePrefix", ""))
                log.info("crawler %s: %s %s.%s (%d files)", name, result.action, request["DatabaseName"],
                         result.table, result.files)
        except CrawlError as exc:
            outcome |= {"Status": "FAILED", "ErrorMessage": str(exc)}
        except Exception as exc:  # noqa: BLE001 - any failure is the crawl's outcome, as Glue reports it
            log.exception("crawler %s failed", name)
            outcome |= {"Status": "FAILED", "ErrorMessage": f"Internal Service Exception: {exc}"}
        self.store.rows("UPDATE glue_crawlers SET state = 'READY', last_crawl = %s, updated_at = clock_timestamp() "
                        "WHERE name = %s", (jsonb(outcome), name))

    def _crawlers(self, name: str | None = None) -> list[dict]:
        rows = self.store.rows("SELECT request, state, started_at, last_crawl, created_at, updated_at FROM "
                               "glue_crawlers WHERE %(name)s::text IS NULL OR name = %(name)s ORDER BY name",
                               {"name": name})
        crawlers = []
        for request, state, started_at, last_crawl, created_at, updated_at in rows:
            crawler = {key: request[key] for key in ("Name", "Role", "Targets", "DatabaseName", "Description",
                                                     "TablePrefix", "Classifiers", "SchemaChangePolicy",
                                                     "RecrawlPolicy", "Configuration") if key in request}
            crawler |= {"State": state, "CreationTime": created_at, "LastUpdated": updated_at, "Version": 1,
                        "CrawlElapsedTime": 0}
            if "Schedule" in request:
                # kept, not run: crawlers run on StartCrawler only here
                crawler["Schedule"] = {"ScheduleExpression": request["Schedule"], "State": "NOT_SCHEDULED"}
            if state == "RUNNING" and started_at is not None:
                crawler["CrawlElapsedTime"] = int((datetime.now(timezone.utc) - started_at).total_seconds() * 1000)
            if last_crawl:
                crawler["LastCrawl"] = {**last_crawl, "StartTime": datetime.fromtimestamp(last_crawl["StartTime"],
                                                                                          timezone.utc)}
            crawlers.append(crawler)
        return crawlers
