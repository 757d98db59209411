"""The EventBridge rule at work: S3 Object Created events that match a workflow's trigger
start runs, one at a time, each recorded in PostgreSQL. The position in the event stream is
checkpointed there too, so a restarted watcher replays what it missed; the trigger key
(bucket/key@version) makes a replayed event start no second run."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

from aws.stepfunctions import runs
from aws.stepfunctions.engine import Outcome, Recorder, Workflow, execute, matches
from labs.lab_c.events import object_created, tail_events
from lakelab.settings import Settings
from services.s3.client import get_client, parse_uri
from services.s3.events import MetaTail, bucket_path

console = Console(stderr=True)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def trigger_key(event: dict[str, Any]) -> str:
    obj = event["detail"]["object"]
    return f"{event['detail']['bucket']['name']}/{obj['key']}@{obj.get('version-id') or obj.get('sequencer')}"


def start_run(settings: Settings, workflow: Workflow, event: dict[str, Any], recorder: Recorder | None = None,
              dedup: bool = True) -> Outcome:
    """One run for one event: the trigger's Input merged under the event."""
    data = deep_merge(workflow.Trigger.Input if workflow.Trigger else {}, event)
    return execute(workflow, data, recorder or runs.RunStore(settings), settings,
                   trigger_key=trigger_key(event) if dedup else None)


def start_for_object(settings: Settings, workflow: Workflow, uri: str, version_id: str | None = None) -> Outcome:
    """One run on an existing object (its current version by default), as if it had just been
    uploaded; no trigger dedup, so it runs again on a key already processed."""
    bucket, key = parse_uri(uri)
    if not key:
        raise ValueError(f"not an s3://bucket/key URI: {uri}")
    head = get_client(settings).head_object(Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {}))
    event = object_created(bucket, key, head.get("VersionId"), head["ContentLength"], head["ETag"].strip('"'),
                           time.time_ns(), settings.s3_region)
    return start_run(settings, workflow, event, dedup=False)


def watched_location(workflow: Workflow) -> tuple[str, str]:
    """The bucket and key prefix a trigger's EventPattern names (what to subscribe to)."""
    if not workflow.Trigger:
        raise ValueError(f"workflow {workflow.Name} has no Trigger")
    detail = workflow.Trigger.EventPattern.get("detail", {})
    buckets = detail.get("bucket", {}).get("name", [])
    if len(buckets) != 1:
        raise ValueError("the trigger must name exactly one bucket")
    prefixes = [k["prefix"] for k in detail.get("object", {}).get("key", []) if isinstance(k, dict) and "prefix" in k]
    return buckets[0], prefixes[0] if len(prefixes) == 1 else ""


class Watcher:
    """Runs `workflow` for every matching event until `stop()`."""

    def __init__(self, settings: Settings, workflow: Workflow,
                 on_outcome: Callable[[dict, Outcome], None] | None = None) -> None:
        self.settings, self.workflow = settings, workflow
        self.bucket, self.prefix = watched_location(workflow)
        self.name = f"{workflow.Name}:{self.bucket}/{self.prefix}"
        self.on_outcome = on_outcome
        self._stop = threading.Event()
        self._tail: MetaTail | None = None
        self._started_ns = time.time_ns()  # without a checkpoint, events from here on
        self.ready = threading.Event()

    def events(self):
        since = runs.checkpoint(self.name, self.settings) or self._started_ns
        self._tail = MetaTail(self.settings, bucket_path(self.bucket, self.prefix), since)
        return tail_events(self._tail, self.bucket, self.prefix, self.settings.s3_region)

    def run(self) -> None:
        store = runs.RunStore(self.settings)
        aborted = store.abort_orphans()
        if aborted:
            console.print(f"marked {aborted} runs of dead workers ABORTED")
        delay = 1.0
        while not self._stop.is_set():
            try:
                events = self.events()
                self.ready.set()
                for event in events:
                    if self._stop.is_set():
                        return
                    if matches(self.workflow.Trigger.EventPattern, event):
                        outcome = start_run(self.settings, self.workflow, event, store)
                        if self.on_outcome:
                            self.on_outcome(event, outcome)
                    sequencer = event["detail"]["object"].get("sequencer")
                    if sequencer:
                        runs.save_checkpoint(self.name, int(sequencer), self.settings)
                    delay = 1.0
            except (RuntimeError, OSError) as exc:  # the filer went away (ConnectionError): resume from the checkpoint
                if self._stop.is_set():
                    return
                console.print(f"[yellow]event stream lost ({exc}); reconnecting in {delay:.0f} s[/]")
            finally:
                if self._tail:
                    self._tail.stop()
            self._stop.wait(delay)
            delay = min(delay * 2, 30)

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name=f"watcher-{self.workflow.Name}", daemon=True)
        thread.start()
        self.ready.wait(30)
        return thread

    def stop(self) -> None:
        self._stop.set()
        if self._tail:
            self._tail.stop()
