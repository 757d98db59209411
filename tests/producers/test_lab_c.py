"""Lab C's sample data generators, without the stack."""

import csv
import io
import json
import re

import pytest

from producers import lab_c as data

pytestmark = pytest.mark.unit


def test_generators_are_deterministic_and_in_their_native_formats():
    assert data.sales_csv(20, seed=1) == data.sales_csv(20, seed=1) != data.sales_csv(20, seed=2)
    rows = list(csv.DictReader(io.StringIO(data.sales_csv(20).decode())))
    assert len(rows) == 20 and set(data.SALES_COLUMNS) == set(rows[0]) and rows[0]["location"] == "London"
    events = [json.loads(line) for line in data.json_events(10).decode().splitlines()]
    assert len(events) == 10 and {"event_id", "ts", "event_type", "geo"} <= set(events[0])
    combined = re.compile(r'^\S+ - - \[[^]]+\] "(GET|POST) \S+ HTTP/1.1" \d{3} \d+ "[^"]*" "[^"]*"$')
    logs = data.server_logs(5).decode().splitlines()
    assert len(logs) == 5 and all(combined.match(line) for line in logs), logs
