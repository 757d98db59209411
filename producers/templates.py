"""Record templates in the Kinesis Data Generator's style, rendered with Python's `faker`.

A template is the text of one record with `{{...}}` placeholders, exactly as typed into the KDG:

    {"device_id": "{{device.id}}", "temperature": {{random.number(70)}}, "ip": "{{internet.ip}}"}
    {{name.firstName}},{{name.lastName}},{{random.number(70)}},{{internet.ip}}

Placeholders are faker.js names (`random.number`, `random.arrayElement`, `name.firstName`,
`internet.ip`, `date.now`, ...). Any other `group.methodName` falls back to the Python faker
provider of the same name in snake case (`address.city` -> `faker.city()`), so most KDG templates
work unchanged. `device.id` is ours: a device from the generator's pool (the Kafka key).

Like the KDG, a template renders to text and that text is the record. A template whose text
starts with `{` (and not `{{`) is a JSON template: it must render a JSON object, a placeholder
inside quotes renders as a string (JSON-escaped) and outside quotes as a JSON literal. Any other
template (a CSV line, a log line) is sent as rendered, each placeholder as plain text.

Every template is checked when parsed: placeholders must be known, their arguments readable, and
one probe rendering must succeed (and parse, for JSON); a `TemplateError` names the line and
column of the template where the problem is.
"""

from __future__ import annotations

import ast
import bisect
import json
import random
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Literal

from faker import Faker

TEMPLATES_DIR = Path(__file__).parent / "templates"

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*(?:\((.*?)\))?\s*\}\}", re.S)


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered; `line` and `column` (1-based) locate the
    problem in the template's text when it has one place."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(f"line {line}, column {column}: {message}" if line is not None else message)
        self.reason, self.line, self.column = message, line, column

    @classmethod
    def at(cls, text: str, offset: int, message: str) -> "TemplateError":
        """The error at character `offset` of the template `text`."""
        line_start = text.rfind("\n", 0, offset) + 1
        return cls(message, line=text.count("\n", 0, offset) + 1, column=offset - line_start + 1)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


_MOMENT = [  # moment.js tokens the KDG's date helpers accept, longest first
    ("YYYY", "%Y"), ("MM", "%m"), ("DD", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"),
]


def format_moment(moment: datetime, fmt: str | None) -> str | int:
    """`date.now("YYYY-MM-DD")` and friends: moment.js tokens, `x` (epoch ms), `X` (epoch s);
    without a format an ISO-8601 UTC timestamp with milliseconds (`2025-01-01T10:00:00.123Z`)."""
    if not fmt:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if fmt == "x":
        return int(moment.timestamp() * 1000)
    if fmt == "X":
        return int(moment.timestamp())
    out = fmt.replace("SSS", f"{moment.microsecond // 1000:03d}")
    for token, directive in _MOMENT:
        out = out.replace(token, directive)
    return moment.strftime(out)


@dataclass
class Context:
    """What placeholders draw from: faker, a seeded RNG, the device pool and the clock."""

    faker: Faker
    rng: random.Random
    devices: Sequence[str]
    now: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    device_order: str = "random"   # or "cycle": every device in turn (deterministic coverage)
    _next: int = 0

    def next_device(self) -> str:
        if self.device_order == "cycle":
            device = self.devices[self._next % len(self.devices)]
            self._next += 1
            return device
        return self.rng.choice(self.devices)


def _number(ctx: Context, arg=None):
    """faker.js `random.number`: `(max)` or `({"min":..,"max":..,"precision":..})`."""
    low, high, precision = 0, 99999, 1
    if isinstance(arg, dict):
        low, high, precision = arg.get("min", low), arg.get("max", high), arg.get("precision", precision)
    elif arg is not None:
        high = arg
    if precision >= 1 and float(precision).is_integer():
        return ctx.rng.randint(int(low), int(high))
    decimals = max(0, len(repr(float(precision)).split(".")[1].rstrip("0")))
    steps = round((high - low) / precision)
    return round(low + ctx.rng.randint(0, steps) * precision, decimals)


HELPERS: dict[str, Callable] = {
    "device.id": lambda ctx: ctx.next_device(),
    "random.number": _number,
    "datatype.number": _number,
    "random.float": lambda ctx, arg=None: _number(
        ctx, {"precision": 0.01, **(arg if isinstance(arg, dict) else {"max": 99999 if arg is None else arg})}),
    "random.uuid": lambda ctx: str(uuid.UUID(int=ctx.rng.getrandbits(128), version=4)),
    "random.boolean": lambda ctx: ctx.rng.random() < 0.5,
    "random.arrayElement": lambda ctx, items: ctx.rng.choice(items),
    "random.word": lambda ctx: ctx.faker.word(),
    "random.alphaNumeric": lambda ctx, n=1: "".join(ctx.rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=int(n))),
    "name.firstName": lambda ctx: ctx.faker.first_name(),
    "name.lastName": lambda ctx: ctx.faker.last_name(),
    "name.findName": lambda ctx: ctx.faker.name(),
    "internet.ip": lambda ctx: ctx.faker.ipv4(),
    "internet.ipv6": lambda ctx: ctx.faker.ipv6(),
    "internet.mac": lambda ctx: ctx.faker.mac_address(),
    "address.latitude": lambda ctx: float(ctx.faker.latitude()),
    "address.longitude": lambda ctx: float(ctx.faker.longitude()),
    "date.now": lambda ctx, fmt=None: format_moment(ctx.now(), fmt),
    "date.utc": lambda ctx, fmt=None: format_moment(ctx.now(), fmt),
}


def _resolve(name: str, faker: Faker) -> Callable:
    if name in HELPERS:
        return HELPERS[name]
    method = _snake(name.rsplit(".", 1)[-1])
    if "." in name and callable(getattr(faker, method, None)):
        return lambda ctx, *args: getattr(ctx.faker, method)(*args)
    raise ValueError(f"unknown placeholder {{{{{name}}}}} (no KDG helper or faker method `{method}`)")


def _parse_args(raw: str | None) -> tuple:
    if raw is None or not raw.strip():
        return ()
    text = raw.strip()
    try:
        value = json.loads(f"[{text}]")
    except (ValueError, RecursionError):
        try:
            value = ast.literal_eval(f"[{text}]")
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
            raise ValueError(f"cannot read the placeholder's arguments ({raw[:100]})") from exc
    return tuple(value)


def _in_string(literal: str, inside: bool) -> bool:
    """Whether a JSON string literal is open after `literal`, given whether one was open before."""
    escaped = False
    for char in literal:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = inside
        elif char == '"':
            inside = not inside
    return inside


def template_format(text: str) -> Literal["json", "text"]:
    """`json` for a template that looks like a JSON object (starts with `{`, not `{{`), else `text`."""
    start = text.lstrip()
    return "json" if start.startswith("{") and not start.startswith("{{") else "text"


@dataclass(frozen=True)
class Placeholder:
    helper: Callable
    args: tuple
    quoted: bool    # inside a JSON string: rendered JSON-escaped, without quotes
    source: str     # as written, e.g. {{random.number(70)}}
    offset: int     # where it starts in the template's text


Record = dict | str
"""A rendered record: the object of a JSON template, the text of any other."""


@dataclass
class Template:
    """A compiled template: literal text and placeholders. `render()` makes one record."""

    name: str
    text: str
    parts: list[str | Placeholder] = field(default_factory=list)

    @cached_property
    def format(self) -> Literal["json", "text"]:
        return template_format(self.text)

    @classmethod
    def parse(cls, name: str, text: str, faker: Faker | None = None) -> "Template":
        """Compile and check `text` (see the module's docstring); TemplateError names the place."""
        faker = faker or Faker()
        parts: list[str | Placeholder] = []
        position, quoted = 0, False
        json_format = template_format(text) == "json"
        for match in PLACEHOLDER.finditer(text):
            parts.append(text[position:match.start()])
            quoted = _in_string(parts[-1], quoted)
            try:
                helper, args = _resolve(match.group(1), faker), _parse_args(match.group(2))
            except ValueError as exc:
                raise TemplateError.at(text, match.start(), str(exc)) from exc
            parts.append(Placeholder(helper, args, json_format and quoted, match.group(0), match.start()))
            position = match.end()
        parts.append(text[position:])
        template = cls(name=name, text=text, parts=parts)
        template._check_literals()
        template._probe(faker)
        return template

    def _check_literals(self) -> None:
        """A `{{` that starts no placeholder is a typo (`{{name.firstName}` or `{{ 1 }}`), not text."""
        offset = 0
        for part in self.parts:
            if isinstance(part, Placeholder):
                offset = part.offset + len(part.source)
            elif (found := part.find("{{")) >= 0:
                raise TemplateError.at(self.text, offset + found, "`{{` starts no placeholder: write "
                                       "{{group.method}} or {{group.method(arguments)}}")

    def _probe(self, faker: Faker) -> None:
        """Render once; a JSON template must give JSON (an object, since it starts with `{`)."""
        probe = Context(faker=faker, rng=random.Random(0), devices=["probe-device"])
        text, starts = self._render(probe)
        if self.format != "json":
            return
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise TemplateError.at(self.text, self._template_offset(exc.pos, starts, text),
                                   f"does not render to JSON: {exc.msg}") from exc

    def _template_offset(self, rendered: int, starts: list[int], text: str) -> int:
        """Where the character at offset `rendered` of a rendering came from in the template."""
        if rendered >= len(text):  # the JSON ended too early: point at the template's last character
            return max(0, len(self.text.rstrip()) - 1)
        index = bisect.bisect_right(starts, rendered) - 1
        part = self.parts[index]
        if isinstance(part, Placeholder):
            return part.offset
        previous = next((p for p in reversed(self.parts[:index]) if isinstance(p, Placeholder)), None)
        return (previous.offset + len(previous.source) if previous else 0) + rendered - starts[index]

    def _render(self, ctx: Context) -> tuple[str, list[int]]:
        """The rendered text and where each part starts in it."""
        out: list[str] = []
        starts: list[int] = []
        length = 0
        for part in self.parts:
            starts.append(length)
            if isinstance(part, str):
                piece = part
            else:
                try:
                    value = part.helper(ctx, *part.args)
                except Exception as exc:  # noqa: BLE001 - faker raises anything for bad arguments
                    raise TemplateError.at(self.text, part.offset, f"{part.source} cannot render: "
                                           f"{type(exc).__name__}: {exc}") from exc
                if self.format == "text" and isinstance(value, str):
                    piece = value
                elif part.quoted:
                    piece = json.dumps(value if isinstance(value, str) else str(value))[1:-1]
                else:
                    piece = json.dumps(value, default=str)
            out.append(piece)
            length += len(piece)
        return "".join(out), starts

    def render(self, ctx: Context) -> Record:
        """One record: the object of a JSON template, the text of any other."""
        text, _ = self._render(ctx)
        return json.loads(text) if self.format == "json" else text


def _template_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))


def load_template(profile: str, faker: Faker | None = None, directory: Path = TEMPLATES_DIR) -> Template:
    """A profile name (`iot_4` -> `producers/templates/iot_4.json`, `company_people` -> `.csv`) or a
    path to a template file. Read from disk each time, so edits apply when the generator switches
    to the profile. The line end a file ends with is not part of the template."""
    path = Path(profile)
    if not path.suffix and not path.exists():
        path = next((p for p in _template_files(directory) if p.stem == profile), path)
    if not path.exists():
        raise TemplateError(f"no template {profile!r} (known: {', '.join(available_profiles(directory))})")
    text = path.read_text().removesuffix("\n").removesuffix("\r")
    try:
        return Template.parse(path.stem, text, faker)
    except TemplateError as exc:
        raise TemplateError(f"{path}: {exc}") from exc


def available_profiles(directory: Path = TEMPLATES_DIR) -> list[str]:
    return [p.stem for p in _template_files(directory)]
