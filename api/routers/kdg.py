"""`/kdg`: the Kinesis Data Generator of the dashboard. Check a template, send it to a stream at
a rate from a job in the API process (`api/kdg.py`), follow the job's count, stop it."""

from __future__ import annotations

import random
from typing import Annotated

from confluent_kafka import KafkaException
from fastapi import APIRouter, Depends, Path, Request
from faker import Faker

from api.deps import ApiKeyDep, SettingsDep
from api.errors import INVALID, RATE_LIMITED, TOO_LARGE, UNAUTHORIZED, URI_TOO_LONG, ApiError, Error, Position
from api.kdg import Job, JobLimit, KdgJobs
from api.models import (
    KdgJob,
    KdgJobList,
    KdgJobRequest,
    KdgTemplate,
    KdgTemplates,
    Stream,
    TemplateCheck,
    TemplateRequest,
)
from lakelab.settings import Settings
from producers.kdg import device_pool, encode
from producers.templates import HELPERS, Context, Template, TemplateError, available_profiles, load_template
from services.kafka import client as kafka

router = APIRouter(prefix="/kdg", tags=["kdg"])

SAMPLES = 3
BAD_TEMPLATE = {400: {"model": Error, "description": "the template does not parse or render (`bad_template`, "
                                                     "with the `position` of the problem in the template)"}}
KAFKA_DOWN = {503: {"model": Error, "description": "Kafka is not answering (`service`: kafka)"}}
NO_JOB = {404: {"model": Error, "description": "no job with this id for this API key"}}
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]


async def get_jobs(request: Request) -> KdgJobs:  # async: no worker thread (api/deps.py)
    return request.app.state.kdg_jobs


JobsDep = Annotated[KdgJobs, Depends(get_jobs)]


def _parse(text: str) -> Template:
    try:
        return Template.parse("template", text)
    except TemplateError as exc:
        position = Position(line=exc.line, column=exc.column) if exc.line is not None else None
        raise ApiError(400, "bad_template", str(exc), position=position) from exc


def _streams(settings: Settings) -> dict[str, int]:
    """Topic -> partitions, without the internal topics (names starting with `_`)."""
    try:
        metadata = kafka.get_client(settings).list_topics(timeout=5)
    except KafkaException as exc:
        raise ApiError(503, "service_unavailable", f"Kafka is not answering: {str(exc)[:300]}", service="kafka") from exc
    return {name: len(topic.partitions) for name, topic in sorted(metadata.topics.items()) if not name.startswith("_")}


def _job(jobs: KdgJobs, owner: str, job_id: str) -> Job:
    job = jobs.get(owner, job_id)
    if job is None:
        raise ApiError(404, "not_found", f"no generator job {job_id} for this API key")
    return job


@router.get("/templates", response_model=KdgTemplates, summary="The shipped templates and the known placeholders",
            responses={**UNAUTHORIZED, **RATE_LIMITED})
def templates(_: ApiKeyDep) -> KdgTemplates:
    shipped = [load_template(name) for name in available_profiles()]
    return KdgTemplates(templates=[KdgTemplate(name=t.name, format=t.format, text=t.text) for t in shipped],
                        placeholders=sorted(HELPERS))


@router.get("/streams", response_model=list[Stream], summary="The streams (topics) a job can send to",
            responses={**UNAUTHORIZED, **RATE_LIMITED, **KAFKA_DOWN})
def streams(settings: SettingsDep, _: ApiKeyDep) -> list[Stream]:
    return [Stream(name=name, partitions=count) for name, count in _streams(settings).items()]


@router.post("/validate", response_model=TemplateCheck, summary="Check a template and render sample records",
             description="A template parses when its placeholders are known and readable and it renders; a template "
                         "that starts with `{` must render a JSON object. A problem is a 400 `bad_template` with "
                         "its line and column in the template.",
             responses={**UNAUTHORIZED, **BAD_TEMPLATE, **INVALID, **TOO_LARGE, **RATE_LIMITED})
def validate(body: TemplateRequest, _: ApiKeyDep) -> TemplateCheck:
    template = _parse(body.template)
    ctx = Context(faker=Faker(), rng=random.Random(), devices=device_pool(50))
    records = [template.render(ctx) for _ in range(SAMPLES)]
    return TemplateCheck(format=template.format, samples=[encode(r)[0].decode() for r in records],
                         fields=list(records[0]) if isinstance(records[0], dict) else None)


@router.get("/jobs", response_model=KdgJobList, summary="This API key's generator jobs, and the limits",
            responses={**UNAUTHORIZED, **RATE_LIMITED})
def list_jobs(settings: SettingsDep, jobs: JobsDep, owner: ApiKeyDep) -> KdgJobList:
    return KdgJobList(jobs=[job.status() for job in jobs.of(owner)], max_jobs=settings.api_kdg_max_jobs_per_key,
                      max_rate=settings.api_kdg_max_rate)


@router.post("/jobs", response_model=KdgJob, status_code=201, summary="Start sending a template to a stream",
             description="Records rendered from the template go to the stream at `rate` per second until `count` "
                         "are sent or the job is stopped. JSON records are keyed by their `device_id` (if any); "
                         "other records are sent as their text, as the KDG does.",
             responses={**UNAUTHORIZED, **BAD_TEMPLATE, **INVALID, **TOO_LARGE, **RATE_LIMITED, **KAFKA_DOWN,
                        404: {"model": Error, "description": "no such stream (topic)"},
                        409: {"model": Error, "description": "this API key already runs the most jobs it may "
                                                             "(`too_many_jobs`)"}})
def start_job(body: KdgJobRequest, settings: SettingsDep, jobs: JobsDep, owner: ApiKeyDep) -> KdgJob:
    if body.rate > settings.api_kdg_max_rate:
        raise ApiError(422, "invalid_request", f"rate {body.rate:g} is over the limit of {settings.api_kdg_max_rate:g} "
                                               "records per second (LAKELAB_API_KDG_MAX_RATE)")
    template = _parse(body.template)
    known = _streams(settings)
    if body.stream not in known:
        raise ApiError(404, "not_found", f"no stream {body.stream!r}; streams: {', '.join(known) or 'none'}")
    try:
        return jobs.start(owner, template, body.stream, body.rate, body.count).status()
    except JobLimit as exc:
        raise ApiError(409, "too_many_jobs", str(exc)) from exc


@router.get("/jobs/{job_id}", response_model=KdgJob, summary="One job: records sent, errors, rate, state",
            responses={**UNAUTHORIZED, **NO_JOB, **INVALID, **RATE_LIMITED, **URI_TOO_LONG})
def get_job(job_id: JobId, jobs: JobsDep, owner: ApiKeyDep) -> KdgJob:
    return _job(jobs, owner, job_id).status()


@router.post("/jobs/{job_id}/stop", response_model=KdgJob, summary="Stop a job (after the batch it is sending)",
             description="Answers once the job has stopped, with its final count. Stopping an ended job changes "
                         "nothing.",
             responses={**UNAUTHORIZED, **NO_JOB, **INVALID, **RATE_LIMITED, **URI_TOO_LONG})
def stop_job(job_id: JobId, jobs: JobsDep, owner: ApiKeyDep) -> KdgJob:
    return jobs.stop(_job(jobs, owner, job_id)).status()
