"""The API's Kinesis Data Generator jobs: a template sent to a stream by `producers.kdg.Generator`
in a thread of the API process, at most `api_kdg_max_jobs_per_key` at a time per API key, each
at most `api_kdg_max_rate` records per second. A job runs until its count is sent, it is
stopped, or the API shuts down (`stop_all`)."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone

from api.models import KdgJob
from lakelab.settings import Settings
from producers.kdg import Generator
from producers.templates import Template

log = logging.getLogger("lakelab.api")
RATE_WINDOW_S = 5.0
ENDED_KEPT = 20  # ended jobs kept per API key, for their final status
BATCHES_PER_SECOND = 10  # the live count moves about this often


class JobLimit(Exception):
    """The API key already runs as many jobs as it may."""


@dataclass
class Job:
    id: str
    owner: str
    generator: Generator
    target_rate: float
    count: int | None
    started: float = field(default_factory=time.monotonic)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    ended_at: datetime | None = None
    state: str = "running"
    failure: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    _samples: deque = field(default_factory=deque)  # (monotonic time, acknowledged) of recent batches
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def acknowledged(self) -> int:
        stats = self.generator.stats
        return stats.sent - stats.errors

    def _sample(self, _records, _at) -> None:
        now = time.monotonic()
        with self._lock:
            self._samples.append((now, self.acknowledged))
            while len(self._samples) > 1 and self._samples[1][0] <= now - RATE_WINDOW_S:
                self._samples.popleft()

    def rate(self) -> float:
        """Records acknowledged per second over the last RATE_WINDOW_S seconds (0 once ended)."""
        if self.state != "running":
            return 0.0
        now = time.monotonic()
        with self._lock:
            older = [s for s in self._samples if s[0] <= now - RATE_WINDOW_S]
        since, base = older[-1] if older else (self.started, 0)
        return round((self.acknowledged - base) / max(now - since, 1e-3), 1)

    def run(self) -> None:
        try:
            self.generator.run(count=self.count, stop=self.stop, on_batch=self._sample)
            self.state = "stopped" if self.stop.is_set() else "finished"
        except Exception as exc:  # noqa: BLE001 - a failed job reports why; the API goes on
            log.warning("KDG job %s failed: %s", self.id, exc)
            self.state, self.failure = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            self.generator.close()
            self.ended_at = datetime.now(timezone.utc)

    def status(self) -> KdgJob:
        stats = self.generator.stats
        return KdgJob(id=self.id, stream=self.generator.topic, format=self.generator.template.format,
                      state=self.state, sent=self.acknowledged, errors=stats.errors, rate=self.rate(),
                      target_rate=self.target_rate, count=self.count, started_at=self.started_at,
                      ended_at=self.ended_at, last_error=self.failure or stats.last_error)


class KdgJobs:
    """The jobs of every API key, kept in memory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, owner: str, template: Template, stream: str, rate: float, count: int | None) -> Job:
        with self._lock:
            running = [j for j in self._jobs.values() if j.owner == owner and j.state == "running"]
            if len(running) >= self.settings.api_kdg_max_jobs_per_key:
                raise JobLimit(f"this API key already runs {len(running)} generator job(s), the most it may "
                               f"(LAKELAB_API_KDG_MAX_JOBS_PER_KEY); stop one first: "
                               f"{', '.join(j.id for j in running)}")
            generator = Generator(self.settings.kafka_bootstrap, topic=stream, profile=template, rate=rate,
                                  batch=max(1, int(rate / BATCHES_PER_SECOND)))
            job = Job(id=secrets.token_hex(8), owner=owner, generator=generator, target_rate=rate, count=count)
            job.thread = threading.Thread(target=job.run, name=f"kdg-{job.id}", daemon=True)
            self._jobs[job.id] = job
            self._forget_old(owner)
        job.thread.start()
        log.info("KDG job %s: %s records of a %s template to %s at %g/s", job.id, count or "unbounded",
                 template.format, stream, rate)
        return job

    def _forget_old(self, owner: str) -> None:
        ended = [j for j in self._jobs.values() if j.owner == owner and j.state != "running"]
        for job in sorted(ended, key=lambda j: j.started)[:-ENDED_KEPT]:
            del self._jobs[job.id]

    def of(self, owner: str) -> list[Job]:
        """The key's jobs, newest first."""
        with self._lock:
            return sorted((j for j in self._jobs.values() if j.owner == owner), key=lambda j: -j.started)

    def get(self, owner: str, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        return job if job is not None and secrets.compare_digest(job.owner, owner) else None

    def stop(self, job: Job, timeout: float = 10.0) -> Job:
        """Ask the job to stop between two sends and wait for its last batch."""
        job.stop.set()
        if job.thread is not None:
            job.thread.join(timeout)
        return job

    def stop_all(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop.set()
        for job in jobs:
            self.stop(job)
