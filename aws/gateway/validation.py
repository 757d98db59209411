"""Request validation against the operation's input shape, answered as AWS's front ends do:
ValidationException ("1 validation error detected: Value ... at 'field' failed to satisfy
constraint: ...").

botocore's ParamValidator checks what SDKs check before sending (required members, types, unknown
members, minimums); the rest of the model's constraints (maximums, patterns, enums) are checked
here, since only servers enforce them.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from botocore.model import Shape
from botocore.validate import ParamValidator

from aws.gateway.errors import CommonError


def validate(shape: Shape | None, params: dict) -> None:
    if shape is None:
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
