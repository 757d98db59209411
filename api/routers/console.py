"""`/console`: what students open the AWS console for, read-only: the services and their health,
buckets and their folders with object counts and versions, topics (streams) with offsets and
recent rate. Tables are `/tables`, workflow runs `/runs`."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

from botocore.exceptions import BotoCoreError, ClientError
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec
from fastapi import APIRouter, Path, Query

from api import probes
from api.deps import ApiKeyDep, SettingsDep
from api.errors import INVALID, RATE_LIMITED, UNAUTHORIZED, URI_TOO_LONG, ApiError, Error
from api.models import (
    BucketListing,
    BucketSummary,
    Folder,
    ObjectEntry,
    PartitionOffsets,
    ServiceHealth,
    ServiceState,
    TopicState,
)
from lakelab.settings import Settings
from services.kafka import client as kafka
from services.s3 import client as s3

router = APIRouter(prefix="/console", tags=["console"])

RECENT_S = 60
S3_DOWN = {503: {"model": Error, "description": "S3 is not answering (`service`: s3)"}}
KAFKA_DOWN = {503: {"model": Error, "description": "Kafka is not answering (`service`: kafka)"}}
NO_BUCKET = {404: {"model": Error, "description": "no such bucket"}}
BUCKET_NAME = r"^[a-z0-9][a-z0-9.-]{1,62}$"
# name, the AWS service it stands for, its endpoint, its probe
SERVICES: list[tuple[str, str, Callable[[Settings], str], Callable[[Settings], str]]] = [
    ("s3", "Amazon S3", lambda s: s.s3_endpoint, probes.s3_buckets),
    ("kafka", "Kinesis Data Streams", lambda s: s.kafka_bootstrap, probes.kafka_metadata),
    ("postgres", "Amazon RDS", lambda s: f"postgresql://{s.pg_host}:{s.pg_port}", probes.postgres_version),
    ("metastore", "Glue Data Catalog", lambda s: s.metastore_uri, probes.metastore_databases),
    ("trino", "Amazon Athena", lambda s: s.trino_url, probes.trino_info),
    ("connect", "Debezium on MSK Connect", lambda s: s.connect_url, probes.connect_plugins),
    ("nginx", "API Gateway", lambda s: s.gateway_url, probes.gateway_health),
]


def _s3_down(exc: Exception) -> ApiError:
    return ApiError(503, "service_unavailable", f"S3 is not answering: {str(exc)[:300]}", service="s3")


def _kafka_down(exc: Exception) -> ApiError:
    return ApiError(503, "service_unavailable", f"Kafka is not answering: {str(exc)[:300]}", service="kafka")


@router.get("/services", response_model=list[ServiceState], summary="The stack's services and their health",
            description="Each service answers one real call (2 s limit each, run together); the API itself is "
                        "up since it answers.",
            responses={**UNAUTHORIZED, **RATE_LIMITED})
async def service_states(settings: SettingsDep, _: ApiKeyDep) -> list[ServiceState]:
    began = time.perf_counter()
    healths = await asyncio.gather(*(probes.probe(check, settings) for *_, check in SERVICES))
    states = [ServiceState(name=name, stands_for=aws, endpoint=endpoint(settings), **health.model_dump())
              for (name, aws, endpoint, _), health in zip(SERVICES, healths)]
    itself = ServiceHealth(status="up", latency_ms=round((time.perf_counter() - began) * 1000, 1), detail="answering")
    return [*states, ServiceState(name="api", stands_for="the query API behind API Gateway", endpoint=settings.api_url,
                                  **itself.model_dump())]


# --- buckets ----------------------------------------------------------------------------------

def _versioning(client, bucket: str) -> str:
    return client.get_bucket_versioning(Bucket=bucket).get("Status") or "Disabled"


def _listing(client, bucket: str, prefix: str, versioned: bool, cap: int) -> tuple[list[dict], bool]:
    """Current objects (or every version and delete marker) under `prefix`, at most `cap`, and
    whether there were more. A version entry has `IsLatest`; a delete marker `DeleteMarker`."""
    entries: list[dict] = []
    if versioned:
        pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            entries += [v for v in page.get("Versions", []) if not v["Key"].endswith("/")]
            entries += [{**marker, "DeleteMarker": True} for marker in page.get("DeleteMarkers", [])]
            if len(entries) >= cap:
                return entries[:cap], True
    else:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            entries += [{**item, "IsLatest": True} for item in page.get("Contents", []) if not item["Key"].endswith("/")]
            if len(entries) >= cap:
                return entries[:cap], True
    return entries, False


def _current(entry: dict) -> bool:
    return entry["IsLatest"] and not entry.get("DeleteMarker")


def _summary(client, bucket: str, cap: int) -> BucketSummary:
    versioning = _versioning(client, bucket)
    entries, truncated = _listing(client, bucket, "", versioning != "Disabled", cap)
    current = [e for e in entries if _current(e)]
    return BucketSummary(name=bucket, versioning=versioning, objects=len(current),
                         bytes=sum(e["Size"] for e in current), versions=len(entries), truncated=truncated)


@router.get("/buckets", response_model=list[BucketSummary], summary="Buckets with their object counts and versions",
            description="Every bucket, its versioning status, and its objects, bytes and versions (each count "
                        "stops at the server's listing cap, then `truncated` is true).",
            responses={**UNAUTHORIZED, **RATE_LIMITED, **S3_DOWN})
def buckets(settings: SettingsDep, _: ApiKeyDep) -> list[BucketSummary]:
    client = s3.get_client(settings, probes.CONSOLE_USER)
    try:
        names = [b["Name"] for b in client.list_buckets()["Buckets"]]
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(lambda name: _summary(client, name, settings.api_console_max_keys), names))
    except (BotoCoreError, ClientError) as exc:
        raise _s3_down(exc) from exc


@router.get("/buckets/{bucket}/objects", response_model=BucketListing, summary="Folders and objects under a prefix",
            description="One level of a bucket, like the S3 console: the folders under `prefix` with the objects, "
                        "bytes and versions they hold, and the objects directly under it with their versions.",
            responses={**UNAUTHORIZED, **NO_BUCKET, **INVALID, **RATE_LIMITED, **S3_DOWN, **URI_TOO_LONG})
def bucket_objects(
    settings: SettingsDep,
    _: ApiKeyDep,
    bucket: Annotated[str, Path(pattern=BUCKET_NAME)],
    prefix: Annotated[str, Query(max_length=1024, description="a folder, ending with / (empty: the bucket's top)",
                                 examples=["raw-zone/"])] = "",
) -> BucketListing:
    client = s3.get_client(settings, probes.CONSOLE_USER)
    try:
        versioning = _versioning(client, bucket)
        entries, truncated = _listing(client, bucket, prefix, versioning != "Disabled", settings.api_console_max_keys)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            raise ApiError(404, "not_found", f"no bucket {bucket}") from exc
        raise _s3_down(exc) from exc
    except BotoCoreError as exc:
        raise _s3_down(exc) from exc
    folders: dict[str, Folder] = {}
    keys: dict[str, list[dict]] = defaultdict(list)
    for entry in entries:
        rest = entry["Key"][len(prefix):]
        if "/" in rest:
            name = prefix + rest.split("/", 1)[0] + "/"
            folder = folders.setdefault(name, Folder(prefix=name, objects=0, bytes=0, versions=0))
            folder.versions += 1
            if _current(entry):
                folder.objects += 1
                folder.bytes += entry["Size"]
        else:
            keys[entry["Key"]].append(entry)
    objects = []
    for key, versions in keys.items():
        latest = next((v for v in versions if v["IsLatest"]), versions[0])
        objects.append(ObjectEntry(key=key, size=None if latest.get("DeleteMarker") else latest["Size"],
                                   last_modified=latest["LastModified"], versions=len(versions),
                                   deleted=bool(latest.get("DeleteMarker"))))
    return BucketListing(bucket=bucket, prefix=prefix, versioning=versioning, folders=sorted(folders.values(),
                         key=lambda f: f.prefix), objects=sorted(objects, key=lambda o: o.key), truncated=truncated)


# --- topics -----------------------------------------------------------------------------------

def _offsets(admin, partitions: list[TopicPartition], spec: OffsetSpec) -> dict[tuple[str, int], int]:
    futures = admin.list_offsets({tp: spec for tp in partitions}, request_timeout=5)
    return {(tp.topic, tp.partition): future.result().offset for tp, future in futures.items()}


@router.get("/topics", response_model=list[TopicState], summary="Topics (streams) with their offsets and recent rate",
            description="Every topic but Kafka's and Connect's internal ones (names starting with `_`): per "
                        f"partition the earliest and latest offsets and the messages of the last {RECENT_S} s, "
                        "from the broker's offsets by timestamp.",
            responses={**UNAUTHORIZED, **RATE_LIMITED, **KAFKA_DOWN})
def topics(settings: SettingsDep, _: ApiKeyDep) -> list[TopicState]:
    admin = kafka.get_client(settings)
    try:
        metadata = admin.list_topics(timeout=5)
        partitions = [TopicPartition(name, p) for name, topic in sorted(metadata.topics.items())
                      if not name.startswith("_") for p in sorted(topic.partitions)]
        if not partitions:
            return []
        earliest = _offsets(admin, partitions, OffsetSpec.earliest())
        latest = _offsets(admin, partitions, OffsetSpec.latest())
        since = _offsets(admin, partitions, OffsetSpec.for_timestamp(int((time.time() - RECENT_S) * 1000)))
    except KafkaException as exc:
        raise _kafka_down(exc) from exc
    states: dict[str, TopicState] = {}
    for tp in partitions:
        at = (tp.topic, tp.partition)
        recent = latest[at] - since[at] if since[at] >= 0 else 0  # -1: nothing written since then
        state = states.setdefault(tp.topic, TopicState(name=tp.topic, partitions=[], messages=0, latest=0,
                                                       last_minute=0, rate=0.0))
        state.partitions.append(PartitionOffsets(partition=tp.partition, earliest=earliest[at], latest=latest[at],
                                                 last_minute=recent))
        state.messages += latest[at] - earliest[at]
        state.latest += latest[at]
        state.last_minute += recent
    for state in states.values():
        state.rate = round(state.last_minute / RECENT_S, 2)
    return list(states.values())
