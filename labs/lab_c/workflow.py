"""Lab C's workflow: the declared state machine `sales_etl.yaml`, loaded with the overrides a run
may ask for, and the settings its quality step declares."""

from __future__ import annotations

from pathlib import Path

from aws.stepfunctions import engine
from labs.lab_c.quality import QualityConfig

WORKFLOW_FILE = Path(__file__).with_name("sales_etl.yaml")


def load(path: str | Path = WORKFLOW_FILE, prefix: str | None = None, table: str | None = None,
         location: str | None = None) -> engine.Workflow:
    """The workflow, its trigger moved to another key `prefix` and its target to another
    `table` / `location` when given (tests and benchmarks run beside the lab's own)."""
    workflow = engine.load(path)
    if prefix is not None and workflow.Trigger:
        workflow.Trigger.EventPattern.setdefault("detail", {}).setdefault("object", {})["key"] = [{"prefix": prefix}]
    if workflow.Trigger and (table or location):
        target = workflow.Trigger.Input.setdefault("target", {})
        target.update({k: v for k, v in {"table": table, "location": location}.items() if v})
    return workflow


def quality_settings(workflow: engine.Workflow) -> tuple[QualityConfig, dict[str, str] | None]:
    """The thresholds of the workflow's quality step and the schema its trigger expects."""
    step = next((s for s in workflow.States.values() if s.Resource and s.Resource.endswith(":quality_check")), None)
    config = QualityConfig.model_validate((step.Parameters or {}).get("thresholds", {}) if step else {})
    return config, workflow.Trigger.Input.get("schema") if workflow.Trigger else None
