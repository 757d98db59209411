"""Requests made at random from botocore's service models, for the unit tests of the endpoint's
fast paths (each checked against the full walk it skips)."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import Any

from botocore.model import Shape


def random_value(shape: Shape, rng: random.Random, depth: int = 0) -> Any:
    """A value for `shape`, usually valid-looking, sometimes wrong in one of the ways a client
    gets it wrong: another type, a length or value out of bounds, a missing or unknown member."""
    kind, meta = shape.type_name, shape.metadata
    if rng.random() < 0.03:
        return rng.choice([None, "x", 7, 1.5, True, b"x", [], {}, datetime(2026, 1, 1, tzinfo=timezone.utc)])
    if kind == "structure":
        if depth > 4:
            return {}
        members = list(shape.members.items())
        chosen = {name: member for name, member in members
                  if name in meta.get("required", ()) or rng.random() < 0.4}
        value = {name: random_value(member, rng, depth + 1) for name, member in chosen.items()}
        if value and rng.random() < 0.03:
            value.pop(rng.choice(list(value)))
        if rng.random() < 0.02:
            value["Bogus"] = 1
        return value
    if kind == "list":
        count = rng.choice([0, 1, 2, 3, meta.get("min", 0), meta.get("max", 3) + 1 if "max" in meta else 2])
        return [random_value(shape.member, rng, depth + 1) for _ in range(min(count, 5 if depth else 30))]
    if kind == "map":
        keys = [rng.choice(["", "k", "x" * 300, 7]) if rng.random() < 0.2 else f"k{i}"
                for i in range(rng.choice([0, 1, 2]))]
        return {key: random_value(shape.value, rng, depth + 1) for key in keys}
    if kind == "string":
        if shape.enum and rng.random() < 0.8:
            return rng.choice(shape.enum)
        return rng.choice(["", "a", "abc", "my-stream_1.0", "arn:aws:kinesis:us-east-1:000000000000:stream/s",
                           "bad name!", "x" * meta.get("max", 300), "x" * (meta.get("max", 300) + 1), "é"])
    if kind in ("integer", "long"):
        return rng.choice([0, 1, -1, meta.get("min", 0), meta.get("max", 10), meta.get("max", 10) + 1, 2**40])
    if kind in ("float", "double"):
        return rng.choice([0.0, 1.5, -2.0, 3])
    if kind == "boolean":
        return rng.choice([True, False])
    if kind == "blob":
        return rng.choice([b"", b"x", b"x" * 1024, bytearray(b"y")])
    if kind == "timestamp":
        return datetime(2026, 1, 1, tzinfo=timezone.utc)
    return rng.choice(["x", 1, {}, []])

