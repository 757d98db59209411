"""The Step Functions stand-in's interpreter, without the stack."""

import time

import pytest

from aws.stepfunctions import engine
from aws.stepfunctions.engine import (
    MemoryRecorder,
    WorkflowError,
    execute,
    get_path,
    matches,
    render,
    set_path,
)

pytestmark = pytest.mark.unit


def test_a_transition_to_an_undeclared_state_is_refused():
    with pytest.raises(ValueError, match="undeclared"):
        engine.Workflow.model_validate({"Name": "x", "StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}})


def test_paths_parameters_and_result_paths():
    data = {"detail": {"object": {"key": "sales/a.csv", "version-id": "v1"}}, "list": [10, 20]}
    assert get_path(data, "$.detail.object.version-id") == "v1"
    assert get_path(data, "$.list[1]") == 20
    assert render({"key.$": "$.detail.object.key", "fixed": {"a": 1}}, data) == {"key": "sales/a.csv", "fixed": {"a": 1}}
    assert set_path(data, "$.result.x", 5)["result"] == {"x": 5}
    assert set_path(data, None, 5) == data
    assert set_path(data, "$", 5) == 5
    assert "result" not in data  # ResultPath copies, never mutates the input


def test_choice_rules():
    data = {"v": {"valid": False, "n": 3, "s": "sales/x.csv"}}
    assert engine.evaluate({"Variable": "$.v.valid", "BooleanEquals": False}, data)
    assert engine.evaluate({"And": [{"Variable": "$.v.n", "NumericGreaterThan": 2},
                                      {"Variable": "$.v.s", "StringMatches": "sales/*.csv"}]}, data)
    assert engine.evaluate({"Not": {"Variable": "$.v.missing", "IsPresent": True}}, data)
    assert not engine.evaluate({"Variable": "$.v.n", "StringEquals": "3"}, data)


def test_event_patterns_like_eventbridge():
    pattern = {"source": ["aws.s3"], "detail": {"bucket": {"name": ["raw"]}, "object": {"key": [{"prefix": "sales/"}]}}}
    event = {"source": "aws.s3", "detail": {"bucket": {"name": "raw"}, "object": {"key": "sales/a.csv"}}}
    assert matches(pattern, event)
    assert not matches(pattern, {**event, "detail": {"bucket": {"name": "raw"}, "object": {"key": "quarantine/a.csv"}}})
    assert not matches(pattern, {**event, "source": "aws.ec2"})
    assert matches({"detail": {"object": {"key": [{"suffix": ".csv"}]}}}, event)


def _flow(states: dict, **extra) -> engine.Workflow:
    return engine.Workflow.model_validate({"Name": "t", "StartAt": next(iter(states)), "States": states, **extra})


def test_retry_with_backoff_then_success():
    calls = []

    def flaky(payload, ctx):
        calls.append(ctx.attempt)
        if len(calls) < 3:
            raise WorkflowError("Flaky", "not yet")
        return {"ok": payload["n"]}

    engine.register_resource("unit:flaky", flaky)
    wf = _flow({"T": {"Type": "Task", "Resource": "unit:flaky", "Parameters": {"n.$": "$.n"}, "ResultPath": "$.r",
                      "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 3}],
                      "End": True}})
    recorder, slept = MemoryRecorder(), []
    outcome = execute(wf, {"n": 7}, recorder, sleep=slept.append)
    assert outcome.status == "SUCCEEDED" and outcome.output == {"n": 7, "r": {"ok": 7}}
    assert calls == [1, 2, 3] and slept == [1, 3]
    assert [e[2] for e in recorder.events].count("TaskRetry") == 2


def test_retries_exhausted_go_to_catch_and_fail_state():
    def broken(payload, ctx):
        raise ValueError("boom")

    engine.register_resource("unit:broken", broken)
    wf = _flow({"T": {"Type": "Task", "Resource": "unit:broken", "Next": "Done",
                      "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 0, "MaxAttempts": 2}],
                      "Catch": [{"ErrorEquals": ["ValueError"], "Next": "Bad", "ResultPath": "$.failure"}]},
                "Done": {"Type": "Succeed"},
                "Bad": {"Type": "Fail", "ErrorPath": "$.failure.Error", "CausePath": "$.failure.Cause"}})
    recorder = MemoryRecorder()
    outcome = execute(wf, {}, recorder, sleep=lambda s: None)
    assert (outcome.status, outcome.error, outcome.cause) == ("FAILED", "ValueError", "boom")
    kinds = [e[2] for e in recorder.events]
    assert kinds.count("TaskRetry") == 2 and "StateCaught" in kinds and kinds[-1] == "ExecutionFailed"


def test_task_timeout_cancels_and_times_the_run_out():
    cancelled = []

    def slow(payload, ctx):
        ctx.cancel_hooks.append(lambda: cancelled.append(True))
        ctx.cancelled.wait(5)
        return {}

    engine.register_resource("unit:slow", slow)
    wf = _flow({"T": {"Type": "Task", "Resource": "unit:slow", "TimeoutSeconds": 0.3, "End": True}})
    began = time.monotonic()
    outcome = execute(wf, {}, MemoryRecorder())
    assert outcome.status == "TIMED_OUT" and outcome.error == "States.Timeout"
    assert time.monotonic() - began < 2 and cancelled == [True]


def test_a_trigger_key_starts_one_run_only():
    wf = _flow({"P": {"Type": "Pass", "End": True}})
    recorder = MemoryRecorder()
    assert execute(wf, {}, recorder, trigger_key="raw/a@v1").status == "SUCCEEDED"
    assert execute(wf, {}, recorder, trigger_key="raw/a@v1").status == "DUPLICATE"
