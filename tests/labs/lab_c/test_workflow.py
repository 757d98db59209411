"""Lab C's declared workflow and its EventBridge-rule watcher, without the stack."""

import pytest
import yaml

from aws.stepfunctions import engine
from labs.lab_c import workflow
from labs.lab_c.events import tail_events
from labs.lab_c.watcher import deep_merge, trigger_key, watched_location
from lakelab.resources import resources

pytestmark = pytest.mark.unit


def parse_meta_event(event: dict) -> dict | None:
    return next(tail_events([event], "raw"), None)


def test_the_declared_sales_workflow_loads_and_every_transition_exists():
    wf = workflow.load()
    assert wf.StartAt == "Validate"
    assert {"Validate", "ETL", "QualityCheck", "Quarantine", "AlreadyProcessed"} <= set(wf.States)
    assert watched_location(wf) == ("raw", "sales/")
    for state in wf.States.values():
        if state.Resource:
            assert callable(engine.resource(state.Resource))


def test_the_workflow_declares_the_lab_s_buckets_and_table():
    lab, wf = resources().labs.lab_c, workflow.load()
    assert watched_location(wf) == (lab.raw_bucket, f"{lab.dataset}/")
    assert wf.Trigger.Input["target"]["table"] == lab.qualified_table
    assert wf.Trigger.Input["target"]["location"] == lab.location


# A `weed filer.meta.tail` record of a PUT into a versioned bucket, and of a delete marker.
VERSION_PUT = yaml.safe_load("""
directory: /buckets/raw/sales/a.csv.versions
tsNs: "1795461168595546801"
eventNotification:
  oldEntry: null
  newParentPath: /buckets/raw/sales/a.csv.versions
  newEntry:
    name: v_67153d9475f2a74bddf5a75ecafd3a7d
    isDirectory: false
    attributes: {fileSize: "8"}
    extended:
      Seaweed-X-Amz-ETag: MzQ0ZmQyMzIzZGQzM2Q1YzA1OGI3Y2YyN2RlMDI5ZTg=
      Seaweed-X-Amz-Version-Id: NjcxNTNkOTQ3NWYyYTc0YmRkZjVhNzVlY2FmZDNhN2Q=
""")


def test_meta_tail_records_become_object_created_events():
    event = parse_meta_event(VERSION_PUT)
    assert event["detail-type"] == "Object Created"
    assert event["detail"]["bucket"]["name"] == "raw"
    assert event["detail"]["object"] == {"key": "sales/a.csv", "size": 8, "etag": "344fd2323dd33d5c058b7cf27de029e8",
                                         "version-id": "67153d9475f2a74bddf5a75ecafd3a7d",
                                         "sequencer": "1795461168595546801"}
    assert trigger_key(event) == "raw/sales/a.csv@67153d9475f2a74bddf5a75ecafd3a7d"
    marker = yaml.safe_load(yaml.safe_dump(VERSION_PUT))
    marker["eventNotification"]["newEntry"]["extended"]["Seaweed-X-Amz-Delete-Marker"] = "dHJ1ZQ=="
    assert parse_meta_event(marker) is None
    noncurrent = yaml.safe_load(yaml.safe_dump(VERSION_PUT))
    noncurrent["eventNotification"]["oldEntry"] = noncurrent["eventNotification"]["newEntry"]
    assert parse_meta_event(noncurrent) is None
    folder = yaml.safe_load(yaml.safe_dump(VERSION_PUT))
    folder["eventNotification"]["newEntry"]["isDirectory"] = True
    assert parse_meta_event(folder) is None


def test_trigger_input_is_merged_under_the_event():
    assert deep_merge({"target": {"table": "t", "owner": "o"}}, {"target": {"table": "u"}, "x": 1}) == \
        {"target": {"table": "u", "owner": "o"}, "x": 1}
