"""The KDG-style templates and the generator's profile switching (no stack needed)."""

import json
import os
import random
import signal
import threading
import time
from datetime import datetime, timezone

import pytest
from faker import Faker

from producers.kdg import Generator, device_pool
from producers.templates import (
    Context,
    Template,
    TemplateError,
    available_profiles,
    format_moment,
    load_template,
)

pytestmark = pytest.mark.unit


def _ctx(devices=("sensor-0001", "sensor-0002"), order="random"):
    return Context(faker=Faker(), rng=random.Random(7), devices=list(devices), device_order=order,
                   now=lambda: datetime(2025, 3, 4, 5, 6, 7, 890000, tzinfo=timezone.utc))


def test_shipped_profiles_have_4_2_and_10_readings():
    assert {"iot_2", "iot_4", "iot_10"} <= set(available_profiles())
    common = {"device_id", "event_time", "owner", "ip"}
    sizes = {p: len(set(load_template(p).render(_ctx())) - common) for p in ("iot_2", "iot_4", "iot_10")}
    assert sizes == {"iot_2": 2, "iot_4": 4, "iot_10": 10}
    four, ten = (set(load_template(p).render(_ctx())) for p in ("iot_4", "iot_10"))
    assert four < ten


def test_kdg_helpers_render_to_typed_json():
    text = ('{"n": {{random.number(70)}}, "r": {{random.number({"min": 5, "max": 6})}}, '
            '"f": {{random.number({"min": 1, "max": 2, "precision": 0.01})}}, "name": "{{name.firstName}}", '
            '"ip": "{{internet.ip}}", "pick": "{{random.arrayElement(["a", "b"])}}", "ok": {{random.boolean}}, '
            '"day": "{{date.now("YYYY-MM-DD")}}", "ms": {{date.now("x")}}, "at": "{{date.now}}", '
            '"city": "{{address.city}}", "quoted": "{{random.number(9)}}", "dev": "{{device.id}}"}')
    record = Template.parse("t", text).render(_ctx())
    assert 0 <= record["n"] <= 70 and record["r"] in (5, 6) and 1 <= record["f"] <= 2
    assert isinstance(record["f"], float) and isinstance(record["n"], int) and isinstance(record["ok"], bool)
    assert record["pick"] in ("a", "b") and record["ip"].count(".") == 3 and record["name"]
    assert record["day"] == "2025-03-04" and record["ms"] == 1741064767890
    assert record["at"] == "2025-03-04T05:06:07.890Z" and record["city"]
    assert record["quoted"].isdigit() and record["dev"] in ("sensor-0001", "sensor-0002")


def test_strings_are_json_escaped():
    ctx = _ctx(devices=['quote"back\\slash'])
    assert Template.parse("t", '{"d": "{{device.id}}"}').render(ctx) == {"d": 'quote"back\\slash'}


def test_device_cycle_covers_every_device_in_turn():
    ctx = _ctx(devices=device_pool(3), order="cycle")
    template = Template.parse("t", '{"d": "{{device.id}}"}')
    assert [template.render(ctx)["d"] for _ in range(4)] == ["sensor-0001", "sensor-0002", "sensor-0003", "sensor-0001"]


def test_bad_templates_are_refused(tmp_path):
    with pytest.raises(TemplateError, match="unknown placeholder"):
        Template.parse("t", '{"x": {{nothing.likeThisAtAll}}}')
    broken = tmp_path / "broken.json"
    broken.write_text('{"x": {{random.number(3)}}')
    with pytest.raises(TemplateError, match="does not render to JSON"):
        load_template(str(broken))
    with pytest.raises(TemplateError, match="no template"):
        load_template("no_such_profile")


def _error(text: str) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        Template.parse("t", text)
    return caught.value


def test_errors_name_the_line_and_column_of_the_template():
    unknown = _error('{\n  "a": 1,\n  "b": {{nope.zzzQq}}\n}')
    assert (unknown.line, unknown.column) == (3, 8) and "unknown placeholder {{nope.zzzQq}}" in unknown.reason
    missing_comma = _error('{\n  "a": {{random.number(5)}}\n  "b": 2\n}')
    assert (missing_comma.line, missing_comma.column) == (3, 3)
    assert missing_comma.reason == "does not render to JSON: Expecting ',' delimiter"
    unclosed = _error('{{name.firstName},{{name.lastName}}')
    assert (unclosed.line, unclosed.column) == (1, 1) and "starts no placeholder" in unclosed.reason
    bad_arguments = _error('{"a": 1,\n "b": {{random.arrayElement(5)}}}')
    assert (bad_arguments.line, bad_arguments.column) == (2, 7) and "cannot render" in bad_arguments.reason
    assert str(bad_arguments).startswith("line 2, column 7: ")


def test_text_templates_render_the_text_as_it_is():
    template = Template.parse("t", '{{name.firstName}},"{{address.city}}",{{random.number(70)}},{{random.boolean}}')
    assert template.format == "text"
    first, city, number, flag = template.render(_ctx()).split(",")
    assert first and city.startswith('"') and city.endswith('"') and 0 <= int(number) <= 70
    assert flag in ("true", "false")
    assert Template.parse("t", '{"a": 1}').format == "json"
    assert Template.parse("t", "[{{random.number(3)}}] a log line").render(_ctx()).endswith("] a log line")


def test_the_company_lab_template_is_a_csv_line():
    template = load_template("company_people")
    assert template.format == "text" and template.text == \
        "{{name.firstName}},{{name.lastName}},{{random.number(70)}},{{internet.ip}}"
    line = template.render(_ctx())
    first, last, age, ip = line.split(",")
    assert "\n" not in line and first and last and 0 <= int(age) <= 70 and ip.count(".") == 3


def test_text_records_are_sent_as_text_without_a_key(monkeypatch):
    template = Template.parse("csv", "{{name.firstName}},{{random.number(9)}}")
    generator = Generator("127.0.0.1:1", topic="people", profile=template)
    produced = []

    def produce(topic, value, key, on_delivery):
        produced.append((topic, value, key))

    monkeypatch.setattr(generator, "producer", type("P", (), {"produce": staticmethod(produce),
                                                              "flush": staticmethod(lambda timeout: 0)})())
    generator.send(generator.records(3))
    assert [(topic, key) for topic, _, key in produced] == [("people", None)] * 3
    assert all(value.decode().count(",") == 1 for _, value, _ in produced)


def test_stop_ends_a_run_between_two_sends(monkeypatch):
    generator = Generator("127.0.0.1:1", topic="unused", profile="iot_2", rate=5)
    monkeypatch.setattr(generator, "send", lambda records: len(records))
    stop = threading.Event()
    worker = threading.Thread(target=generator.run, kwargs={"stop": stop})
    worker.start()
    time.sleep(0.5)
    stop.set()
    worker.join(2)
    assert not worker.is_alive() and 1 <= generator.stats.sent <= 4


def test_moment_formats():
    moment = datetime(2025, 1, 2, 3, 4, 5, 6000, tzinfo=timezone.utc)
    assert format_moment(moment, "YYYY-MM-DDTHH:mm:ss.SSS") == "2025-01-02T03:04:05.006"
    assert format_moment(moment, "X") == 1735787045


def test_sigusr1_switches_to_the_next_profile_and_rereads_the_file(tmp_path):
    for name, readings in (("a", 1), ("b", 2)):
        fields = ", ".join(f'"r{i}": {{{{random.number(5)}}}}' for i in range(readings))
        (tmp_path / f"{name}.json").write_text(f'{{"device_id": "{{{{device.id}}}}", {fields}}}')
    generator = Generator("127.0.0.1:1", topic="unused", profile="a", cycle=["a", "b"], templates_dir=tmp_path)
    signal.signal(signal.SIGUSR1, generator.request_switch)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert generator._switch_requested
        assert generator.switch() == "b" and set(generator.records(1)[0]) == {"device_id", "r0", "r1"}
        (tmp_path / "a.json").write_text('{"device_id": "{{device.id}}", "edited": true}')
        assert generator.switch() == "a" and generator.records(1)[0]["edited"] is True
    finally:
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    assert json.loads(json.dumps(generator.records(2)))
