"""Request validation against the operation's input shape, answered as AWS's front ends do:
ValidationException ("1 validation error detected: Value ... at 'field' failed to satisfy
constraint: ...").

botocore's ParamValidator checks what SDKs check before sending (required members, types, unknown
members, minimums); the rest of the model's constraints (maximums, patterns, enums) are checked
here, since only servers enforce them.

Most requests are valid, and walking both checks over PutRecords' 500 records took about 4 ms of
the endpoint's time per call. So a request is first checked in one pass by a checker made once
per shape (`_conforms`), which says only "valid" or "look closer": it refuses whatever either check
would report, and on "look closer" both run as before and word the errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from botocore.model import Shape
from botocore.validate import ParamValidator

from aws.gateway.errors import CommonError


def validate(shape: Shape | None, params: dict) -> None:
    if shape is None or _conforms(shape)(params):
        return
    problems: list[str] = []
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        problems += report.generate_report().splitlines()
    problems += constraint_violations(shape, params, "")
    if problems:
        raise validation_error(problems)


def validation_error(problems: list[str]) -> CommonError:
    count = len(problems)
    return CommonError("Validation", f"{count} validation error{'s' if count > 1 else ''} detected: "
                                     + "; ".join(problems))


def constraint_violations(shape: Shape, value: Any, path: str) -> list[str]:
    return _violations(shape, value, (path,) if path else ())


def _violations(shape: Shape, value: Any, path: tuple[str, ...]) -> list[str]:
    """Paths stay tuples until a problem is found: PutRecords' 500 records are walked per request."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return [problem for name, member in shape.members.items() if name in value
                for problem in _violations(member, value[name], (*path, name[:1].lower() + name[1:]))]
    problems = _own_violations(shape, value, path)
    if kind == "list" and isinstance(value, list):
        for index, item in enumerate(value, 1):
            problems += _violations(shape.member, item, (*path, str(index), "member"))
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            problems += _violations(shape.value, item, (*path, key))
    return problems


def _own_violations(shape: Shape, value: Any, path: tuple[str, ...]) -> list[str]:
    meta, kind = shape.metadata, shape.type_name
    problems = []
    if kind in ("string", "blob", "list", "map") and isinstance(value, (str, bytes, list, dict)):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"Member must have length less than or equal to {meta['max']}")
    elif kind in ("integer", "long", "float", "double") and isinstance(value, (int, float)):
        if "max" in meta and value > meta["max"]:
            problems.append(f"Member must have value less than or equal to {meta['max']}")
    if kind == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            problems.append(f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        pattern = _compiled(meta["pattern"]) if "pattern" in meta else None
        if pattern is not None and not pattern.fullmatch(value):
            problems.append(f"Member must satisfy regular expression pattern: {meta['pattern']}")
    if not problems:
        return problems
    shown = "" if kind in ("blob", "list", "map", "structure") else f" '{value}'"
    return [f"Value{shown} at '{'.'.join(path)}' failed to satisfy constraint: {problem}" for problem in problems]


@cache
def _compiled(pattern: str) -> re.Pattern | None:
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct (\p{...}): such patterns are left to the provider
        return None


SCALARS: dict[str, Callable[[Any], bool]] = {
    "string": lambda value: type(value) is str,
    "integer": lambda value: type(value) is int,
    "long": lambda value: type(value) is int,
    "float": lambda value: type(value) in (int, float),
    "double": lambda value: type(value) in (int, float),
    "boolean": lambda value: type(value) is bool,
    "blob": lambda value: type(value) in (bytes, bytearray),
    "timestamp": lambda value: isinstance(value, datetime),
}


def _never(value: Any) -> bool:
    return False


@cache
def _conforms(shape: Shape) -> Callable[[Any], bool]:
    """A check of a value against `shape` that is True only where neither ParamValidator nor
    `constraint_violations` would report anything (it may be False where they would not: then
    they run). Members' checkers are looked up when called: shapes can contain themselves."""
    kind, meta = shape.type_name, shape.metadata
    if meta.get("document") or meta.get("union") or shape.serialization.get("jsonvalue"):
        return _never
    low = meta.get("min", 1 if shape.serialization.get("hostLabel") else None)
    high = meta.get("max")
    if kind == "structure":
        required = tuple(meta.get("required", ()))
        members: dict[str, Callable[[Any], bool]] = {}

        def structure(value: Any) -> bool:
            if not members:
                members.update((name, _conforms(member)) for name, member in shape.members.items())
            return (type(value) is dict and all(name in value for name in required)
                    and all(name in members and members[name](item) for name, item in value.items()))
        return structure
    if kind in ("list", "map"):
        container = list if kind == "list" else dict

        def sized(value: Any) -> bool:
            return type(value) is container and (low is None or len(value) >= low) \
                and (high is None or len(value) <= high)
        if kind == "list":
            member = shape.member
            return lambda value: sized(value) and all(map(_conforms(member), value))
        key, item = shape.key, shape.value
        return lambda value: sized(value) and all(_conforms(key)(k) and _conforms(item)(v) for k, v in value.items())
    typed = SCALARS.get(kind)
    if typed is None:
        return _never
    if kind in ("string", "blob"):
        pattern = _compiled(meta["pattern"]) if kind == "string" and "pattern" in meta else None
        enum = frozenset(shape.enum) if kind == "string" and shape.enum else None
        if kind == "blob":
            low = None  # ParamValidator does not check a blob's length against its minimum
        return lambda value: (typed(value) and (low is None or len(value) >= low)
                              and (high is None or len(value) <= high) and (enum is None or value in enum)
                              and (pattern is None or pattern.fullmatch(value) is not None))
    if kind in ("integer", "long", "float", "double"):
        return lambda value: typed(value) and (low is None or value >= low) and (high is None or value <= high)
    return typed
