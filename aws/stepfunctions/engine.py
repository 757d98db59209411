"""A small interpreter for workflows declared in an Amazon States Language-like YAML file
(the Step Functions stand-in), plus the EventBridge-like trigger rule that starts them.

Supported: `Task` (Resource = "module:function", Parameters with `key.$` paths, ResultPath,
TimeoutSeconds, Retry with IntervalSeconds/MaxAttempts/BackoffRate/MaxDelaySeconds, Catch),
`Choice` (Variable + String/Numeric/Boolean comparisons, IsPresent/IsNull, And/Or/Not, Default),
`Pass`, `Wait`, `Succeed`, `Fail` (Error/Cause or ErrorPath/CausePath); a run-level
TimeoutSeconds. Paths are the `$.a.b[0]` subset of JSONPath. Every state transition is handed to
a recorder (`aws.stepfunctions.runs.RunStore` keeps them in PostgreSQL) so runs are durable.
"""

from __future__ import annotations

import copy
import importlib
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lakelab.settings import Settings

# ---------------------------------------------------------------- declaration


class Retrier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ErrorEquals: list[str]
    IntervalSeconds: float = 1.0
    MaxAttempts: int = 3  # retries after the first attempt (0: never retry)
    BackoffRate: float = 2.0
    MaxDelaySeconds: float | None = None

    def delay(self, retry_number: int) -> float:
        """Seconds before retry number `retry_number` (1-based), as Step Functions computes it."""
        seconds = self.IntervalSeconds * self.BackoffRate ** (retry_number - 1)
        return min(seconds, self.MaxDelaySeconds) if self.MaxDelaySeconds is not None else seconds


class Catcher(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ErrorEquals: list[str]
    Next: str
    ResultPath: str | None = "$"


class State(BaseModel):
    model_config = ConfigDict(extra="forbid")
    Type: Literal["Task", "Choice", "Pass", "Wait", "Succeed", "Fail"]
    Comment: str | None = None
    Next: str | None = None
    End: bool = False
    Resource: str | None = None
    Parameters: dict[str, Any] | None = None
    InputPath: str | None = "$"
    ResultPath: str | None = "$"
    OutputPath: str | None = "$"
    Result: Any = None
    TimeoutSeconds: float | None = None
    Retry: list[Retrier] = Field(default_factory=list)
    Catch: list[Catcher] = Field(default_factory=list)
    Choices: list[dict[str, Any]] = Field(default_factory=list)
    Default: str | None = None
    Seconds: float | None = None
    Error: str | None = None
    Cause: str | None = None
    ErrorPath: str | None = None
    CausePath: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> State:
        if self.Type == "Task" and not self.Resource:
            raise ValueError("a Task needs a Resource")
        if self.Type == "Choice" and not self.Choices:
            raise ValueError("a Choice needs Choices")
        if self.Type in ("Task", "Pass", "Wait") and not (self.Next or self.End):
            raise ValueError(f"a {self.Type} needs Next or End: true")
        return self


class TriggerRule(BaseModel):
    """The EventBridge rule: which events start the workflow, and what is merged into its input."""

    model_config = ConfigDict(extra="forbid")
    EventPattern: dict[str, Any]
    Input: dict[str, Any] = Field(default_factory=dict)


class Workflow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    Name: str
    Comment: str | None = None
    StartAt: str
    TimeoutSeconds: float | None = None
    Trigger: TriggerRule | None = None
    States: dict[str, State]

    @model_validator(mode="after")
    def _targets(self) -> Workflow:
        names = set(self.States)
        targets = {self.StartAt}
        for state in self.States.values():
            targets |= {t for t in (state.Next, state.Default) if t}
            targets |= {c.Next for c in state.Catch}
            targets |= set(_choice_targets(state.Choices))
        missing = targets - names
        if missing:
            raise ValueError(f"transitions to undeclared states: {sorted(missing)}")
        return self


def _choice_targets(choices: list[dict[str, Any]]) -> list[str]:
    return [c["Next"] for c in choices if "Next" in c]


def load(path: str | Path) -> Workflow:
    """The workflow declared in a YAML file."""
    return Workflow.model_validate(yaml.safe_load(Path(path).read_text()))


# ---------------------------------------------------------------- paths


_TOKEN = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\['([^']+)'\]")


def _tokens(path: str) -> list[str | int]:
    if not path.startswith("$"):
        raise ValueError(f"not a path: {path!r}")
    rest, out, pos = path[1:], [], 0
    while pos < len(rest):
        match = _TOKEN.match(rest, pos)
        if not match:
            raise ValueError(f"unsupported path {path!r}")
        name, index, quoted = match.groups()
        out.append(int(index) if index is not None else (name or quoted))
        pos = match.end()
    return out


_MISSING = object()


def get_path(data: Any, path: str, default: Any = _MISSING) -> Any:
    value = data
    for token in _tokens(path):
        try:
            value = value[token]
        except (KeyError, IndexError, TypeError):
            if default is _MISSING:
                raise KeyError(f"{path} not found") from None
            return default
    return value


def set_path(data: Any, path: str | None, value: Any) -> Any:
    """ResultPath semantics: `$` replaces, `null` (None) discards, `$.a.b` sets (creating maps)."""
    if path is None:
        return data
    tokens = _tokens(path)
    if not tokens:
        return value
    result = copy.deepcopy(data) if isinstance(data, dict) else {}
    node = result
    for token in tokens[:-1]:
        node = node.setdefault(token, {})
    node[tokens[-1]] = value
    return result


def render(template: Any, data: Any) -> Any:
    """Parameters: keys ending in `.$` take the value at a path of the state input."""
    if isinstance(template, dict):
        return {
            (k[:-2] if k.endswith(".$") else k): (get_path(data, v) if k.endswith(".$") else render(v, data))
            for k, v in template.items()
        }
    if isinstance(template, list):
        return [render(v, data) for v in template]
    return template


# ---------------------------------------------------------------- choices and event patterns


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "StringEquals": lambda a, b: isinstance(a, str) and a == b,
    "StringMatches": lambda a, b: isinstance(a, str) and re.fullmatch(re.escape(b).replace(r"\*", ".*"), a) is not None,
    "NumericEquals": lambda a, b: _num(a) and a == b,
    "NumericGreaterThan": lambda a, b: _num(a) and a > b,
    "NumericGreaterThanEquals": lambda a, b: _num(a) and a >= b,
    "NumericLessThan": lambda a, b: _num(a) and a < b,
    "NumericLessThanEquals": lambda a, b: _num(a) and a <= b,
    "BooleanEquals": lambda a, b: isinstance(a, bool) and a == b,
}


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def evaluate(rule: dict[str, Any], data: Any) -> bool:
    if "And" in rule:
        return all(evaluate(r, data) for r in rule["And"])
    if "Or" in rule:
        return any(evaluate(r, data) for r in rule["Or"])
    if "Not" in rule:
        return not evaluate(rule["Not"], data)
    absent = object()
    found = get_path(data, rule["Variable"], absent)
    value = None if found is absent else found
    if "IsPresent" in rule:
        return (found is not absent) == rule["IsPresent"]
    if "IsNull" in rule:
        return (value is None) == rule["IsNull"]
    for name, compare in _COMPARISONS.items():
        if name in rule:
            return compare(value, rule[name])
        if f"{name}Path" in rule:
            return compare(value, get_path(data, rule[f"{name}Path"], None))
    raise ValueError(f"unsupported choice rule: {rule}")


def matches(pattern: dict[str, Any], event: Any) -> bool:
    """EventBridge pattern matching: nested maps; lists of literals, {prefix}, {suffix},
    {exists}, {anything-but}; a field matches when any list item matches."""
    if not isinstance(event, dict):
        return False
    for key, expected in pattern.items():
        value = event.get(key, _MISSING)
        if isinstance(expected, dict):
            if value is _MISSING or not matches(expected, value):
                return False
        elif not any(_match_one(item, value) for item in expected):
            return False
    return True


def _match_one(item: Any, value: Any) -> bool:
    if isinstance(item, dict):
        if "exists" in item:
            return (value is not _MISSING) == item["exists"]
        if value is _MISSING:
            return False
        if "prefix" in item:
            return isinstance(value, str) and value.startswith(item["prefix"])
        if "suffix" in item:
            return isinstance(value, str) and value.endswith(item["suffix"])
        if "anything-but" in item:
            excluded = item["anything-but"]
            return value not in (excluded if isinstance(excluded, list) else [excluded])
        raise ValueError(f"unsupported pattern {item}")
    return value is not _MISSING and value == item


# ---------------------------------------------------------------- execution


class WorkflowError(Exception):
    """A task error with a States-style name (`error`) and a human cause."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error, self.cause = error, cause


def error_name(exc: BaseException) -> str:
    return getattr(exc, "error", None) or type(exc).__name__


def _error_matches(names: list[str], error: str) -> bool:
    if "States.ALL" in names or error in names:
        return True
    return "States.TaskFailed" in names and error != "States.Timeout"


class Recorder(Protocol):
    """Where runs and their transitions go (`aws.stepfunctions.runs.RunStore` in PostgreSQL)."""

    def start(self, run_id: str, workflow: str, data: Any, trigger_key: str | None) -> bool: ...
    def event(self, run_id: str, state: str | None, kind: str, attempt: int | None = None,
              detail: Any = None) -> None: ...
    def finish(self, run_id: str, status: str, output: Any = None, error: str | None = None,
               cause: str | None = None) -> None: ...


@dataclass
class MemoryRecorder:
    """Keeps runs in memory: dry runs and unit tests of the interpreter."""

    runs: dict[str, dict] = field(default_factory=dict)
    events: list[tuple] = field(default_factory=list)

    def start(self, run_id, workflow, data, trigger_key):
        if trigger_key and any(r["trigger_key"] == trigger_key for r in self.runs.values()):
            return False
        self.runs[run_id] = {"workflow": workflow, "status": "RUNNING", "trigger_key": trigger_key, "input": data}
        return True

    def event(self, run_id, state, kind, attempt=None, detail=None):
        self.events.append((run_id, state, kind, attempt, detail))

    def finish(self, run_id, status, output=None, error=None, cause=None):
        self.runs[run_id].update(status=status, output=output, error=error, cause=cause)


@dataclass
class Context:
    """What a task gets besides its input: the run, the settings, and a way to be cancelled."""

    run_id: str
    state: str
    attempt: int
    settings: Settings | None
    cancel_hooks: list[Callable[[], None]] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass
class Outcome:
    run_id: str
    status: str  # SUCCEEDED, FAILED, TIMED_OUT, DUPLICATE (not started: the trigger was seen)
    output: Any = None
    error: str | None = None
    cause: str | None = None


_RESOURCES: dict[str, Callable[..., Any]] = {}


def register_resource(name: str, function: Callable[..., Any]) -> None:
    """Make `function` callable as `Resource: name` (besides importable "module:function" names)."""
    _RESOURCES[name] = function


def resource(name: str) -> Callable[..., Any]:
    if name not in _RESOURCES:
        module, _, attr = name.partition(":")
        _RESOURCES[name] = getattr(importlib.import_module(module), attr)
    return _RESOURCES[name]


def execute(workflow: Workflow, data: Any, recorder: Recorder, settings: Settings | None = None,
            trigger_key: str | None = None, run_id: str | None = None,
            sleep: Callable[[float], None] = time.sleep) -> Outcome:
    """Run a workflow to its end. Returns DUPLICATE without running when `trigger_key`
    (e.g. bucket/key@version of the event) already started a run."""
    run_id = run_id or f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    if not recorder.start(run_id, workflow.Name, data, trigger_key):
        return Outcome(run_id, "DUPLICATE")
    recorder.event(run_id, None, "ExecutionStarted", detail={"trigger_key": trigger_key})
    began = time.monotonic()
    name: str | None = workflow.StartAt
    try:
        while name is not None:
            if workflow.TimeoutSeconds and time.monotonic() - began > workflow.TimeoutSeconds:
                raise WorkflowError("States.Timeout", f"run exceeded {workflow.TimeoutSeconds} s")
            state = workflow.States[name]
            recorder.event(run_id, name, "StateEntered")
            if state.Type == "Succeed":
                recorder.event(run_id, name, "StateExited")
                return _finish(recorder, Outcome(run_id, "SUCCEEDED", data))
            if state.Type == "Fail":
                error = get_path(data, state.ErrorPath, None) if state.ErrorPath else state.Error
                cause = get_path(data, state.CausePath, None) if state.CausePath else state.Cause
                recorder.event(run_id, name, "StateFailed", detail={"error": error, "cause": cause})
                return _finish(recorder, Outcome(run_id, "FAILED", data, error or "States.Fail", cause))
            if state.Type == "Choice":
                chosen = next((c["Next"] for c in state.Choices if evaluate(c, data)), state.Default)
                if chosen is None:
                    raise WorkflowError("States.NoChoiceMatched", f"no choice of {name} matched")
                recorder.event(run_id, name, "StateExited", detail={"next": chosen})
                name = chosen
                continue
            effective = get_path(data, state.InputPath) if state.InputPath else {}
            if state.Type == "Pass":
                result = state.Result if state.Result is not None else render(state.Parameters or effective, effective)
            elif state.Type == "Wait":
                sleep(state.Seconds or 0)
                result = effective
            else:
                payload = render(state.Parameters, effective) if state.Parameters is not None else effective
                try:
                    result = _run_task(workflow, name, state, payload, run_id, recorder, settings, sleep)
                except Exception as exc:  # noqa: BLE001 - a task may fail any way; Catch decides
                    error = error_name(exc)
                    catcher = next((c for c in state.Catch if _error_matches(c.ErrorEquals, error)), None)
                    if catcher is None:
                        raise
                    info = {"Error": error, "Cause": getattr(exc, "cause", None) or str(exc)}
                    recorder.event(run_id, name, "StateCaught", detail={**info, "next": catcher.Next})
                    data = set_path(data, catcher.ResultPath, info)
                    name = catcher.Next
                    continue
            data = set_path(data, state.ResultPath, result)
            data = get_path(data, state.OutputPath) if state.OutputPath else {}
            recorder.event(run_id, name, "StateExited", detail=_summary(result))
            name = None if state.End else state.Next
        return _finish(recorder, Outcome(run_id, "SUCCEEDED", data))
    except Exception as exc:  # noqa: BLE001 - recorded, then returned as the outcome
        error = error_name(exc)
        status = "TIMED_OUT" if error == "States.Timeout" else "FAILED"
        return _finish(recorder, Outcome(run_id, status, data, error, getattr(exc, "cause", None) or str(exc)))


def _finish(recorder: Recorder, outcome: Outcome) -> Outcome:
    kind = {"SUCCEEDED": "ExecutionSucceeded", "TIMED_OUT": "ExecutionTimedOut"}.get(outcome.status, "ExecutionFailed")
    detail = None if outcome.status == "SUCCEEDED" else {"error": outcome.error, "cause": (outcome.cause or "")[:2000]}
    recorder.event(outcome.run_id, None, kind, detail=detail)
    recorder.finish(outcome.run_id, outcome.status, outcome.output, outcome.error, outcome.cause)
    return outcome


def _run_task(workflow: Workflow, name: str, state: State, payload: Any, run_id: str, recorder: Recorder,
              settings: Settings | None, sleep: Callable[[float], None]) -> Any:
    function = resource(state.Resource or "")
    attempts: dict[int, int] = {}  # retrier index -> retries used
    attempt = 1
    while True:
        ctx = Context(run_id=run_id, state=name, attempt=attempt, settings=settings)
        try:
            return _call(function, payload, ctx, state.TimeoutSeconds)
        except Exception as exc:  # noqa: BLE001
            error = error_name(exc)
            index = next((i for i, r in enumerate(state.Retry) if _error_matches(r.ErrorEquals, error)), None)
            if index is None or attempts.get(index, 0) >= state.Retry[index].MaxAttempts:  # retries, as in ASL
                recorder.event(run_id, name, "TaskFailed", attempt, {"error": error, "cause": str(exc)[:2000]})
                raise
            attempts[index] = attempts.get(index, 0) + 1
            delay = state.Retry[index].delay(attempts[index])
            recorder.event(run_id, name, "TaskRetry", attempt,
                           {"error": error, "cause": str(exc)[:500], "delay_s": delay})
            sleep(delay)
            attempt += 1


def _call(function: Callable[..., Any], payload: Any, ctx: Context, timeout: float | None) -> Any:
    if not timeout:
        return function(payload, ctx)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"task-{ctx.state}")
    future = pool.submit(function, payload, ctx)
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        ctx.cancelled.set()
        for hook in ctx.cancel_hooks:
            hook()
        raise WorkflowError("States.Timeout", f"{ctx.state} ran longer than {timeout} s") from None
    finally:
        pool.shutdown(wait=False)


def _summary(result: Any) -> Any:
    """What goes into a StateExited record: small results whole, large ones trimmed."""
    text = repr(result)
    return result if len(text) <= 2000 else {"truncated": text[:2000]}
