"""Lab D's sink without the stack: Connect schema -> Spark types, topic names."""

import json
import re

import pytest
from pyspark.sql import types as T

from spark_jobs.lab_d import SinkConfig, UnsupportedSchema, row_columns

pytestmark = pytest.mark.unit


def envelope_schema(*fields: dict) -> str:
    row = {"type": "struct", "optional": True, "fields": list(fields)}
    return json.dumps({"type": "struct", "fields": [{**row, "field": "before"}, {**row, "field": "after"},
                                                     {"type": "string", "optional": False, "field": "op"}]})


def test_connect_types_map_to_spark_types():
    schema = envelope_schema(
        {"type": "int64", "optional": False, "field": "id"},
        {"type": "int16", "optional": False, "field": "quantity"},
        {"type": "double", "optional": True, "field": "weight_kg"},
        {"type": "boolean", "optional": False, "field": "active"},
        {"type": "string", "optional": False, "field": "price",
         "parameters": {"__debezium.source.column.type": "NUMERIC", "__debezium.source.column.length": "10",
                        "__debezium.source.column.scale": "2"}},
        {"type": "string", "optional": True, "name": "io.debezium.data.Json", "field": "details"},
        {"type": "int32", "optional": True, "name": "io.debezium.time.Date", "field": "ship_date"},
        {"type": "string", "optional": False, "name": "io.debezium.time.ZonedTimestamp", "field": "ordered_at"},
        {"type": "int64", "optional": False, "name": "io.debezium.time.MicroTimestamp", "field": "updated_at"},
        {"type": "array", "items": {"type": "string"}, "optional": True, "field": "tags"},
    )
    raw = {c.name: c.raw for c in row_columns(schema)}
    assert list(raw) == ["id", "quantity", "weight_kg", "active", "price", "details", "ship_date", "ordered_at",
                         "updated_at", "tags"]
    assert raw["id"] == T.LongType() and raw["quantity"] == T.ShortType() and raw["weight_kg"] == T.DoubleType()
    # how the JSON value is read; each column's `convert` turns it into the lake type
    assert raw["price"] == T.StringType() and raw["ordered_at"] == T.StringType()
    assert raw["ship_date"] == T.IntegerType() and raw["updated_at"] == T.LongType()
    assert raw["tags"] == T.ArrayType(T.StringType())


def test_binary_decimals_are_refused_with_the_fix():
    schema = envelope_schema({"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
                              "parameters": {"scale": "2"}, "field": "price"})
    with pytest.raises(UnsupportedSchema, match="decimal.handling.mode=string"):
        row_columns(schema)


def test_topic_pattern_takes_table_topics_only():
    pattern = re.compile(SinkConfig(topic_prefix="shop").topic_pattern)
    assert pattern.match("shop.public.orders")
    assert not pattern.match("__debezium-heartbeat.shop")
    assert not pattern.match("shopx.public.orders")
    assert not pattern.match("shop.public")
    assert SinkConfig(table_suffix="_x").lake_table("orders") == "orders_x"
    assert SinkConfig(table_suffix="_x").table_path("orders") == "s3a://warehouse/cdc/orders_x"
