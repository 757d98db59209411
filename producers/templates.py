"""Record templates in the Kinesis Data Generator's style, rendered with Python's `faker`.

A template is the text of one record with `{{...}}` placeholders, exactly as typed into the KDG:

    {"device_id": "{{device.id}}", "temperature": {{random.number(70)}}, "ip": "{{internet.ip}}"}

Placeholders are faker.js names (`random.number`, `random.arrayElement`, `name.firstName`,
`internet.ip`, `date.now`, ...). Any other `group.methodName` falls back to the Python faker
provider of the same name in snake case (`address.city` -> `faker.city()`), so most KDG templates
work unchanged. `device.id` is ours: a device from the generator's pool (the Kafka key).

A placeholder inside quotes renders as a string (JSON-escaped); outside quotes as a JSON literal.
Every template is rendered once when loaded and must then parse as a JSON object.
"""

from __future__ import annotations

import ast
import json
import random
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from faker import Faker

TEMPLATES_DIR = Path(__file__).parent / "templates"

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*(?:\((.*?)\))?\s*\}\}", re.S)


class TemplateError(ValueError):
    """A template that cannot be parsed or does not render to a JSON object."""


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
    raise TemplateError(f"unknown placeholder {{{{{name}}}}} (no KDG helper or faker method `{method}`)")


def _parse_args(raw: str | None) -> tuple:
    if raw is None or not raw.strip():
        return ()
    text = raw.strip()
    try:
        value = json.loads(f"[{text}]")
    except json.JSONDecodeError:
        try:
            value = ast.literal_eval(f"[{text}]")
        except (ValueError, SyntaxError) as exc:
            raise TemplateError(f"cannot parse placeholder arguments ({raw})") from exc
    return tuple(value)


def _quoted(text: str, start: int) -> bool:
    """Whether position `start` of `text` lies inside a JSON string literal."""
    inside, escaped = False, False
    for char in text[:start]:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            inside = not inside
    return inside


@dataclass
class Template:
    """A compiled template: literal text and placeholders, rendered to a dict per record."""

    name: str
    text: str
    parts: list = field(default_factory=list)

    @classmethod
    def parse(cls, name: str, text: str, faker: Faker | None = None) -> "Template":
        faker = faker or Faker()
        parts: list = []
        position = 0
        for match in PLACEHOLDER.finditer(text):
            parts.append(text[position:match.start()])
            helper = _resolve(match.group(1), faker)
            parts.append((helper, _parse_args(match.group(2)), _quoted(text, match.start()), match.group(0)))
            position = match.end()
        parts.append(text[position:])
        return cls(name=name, text=text, parts=parts)

    def render_text(self, ctx: Context) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            helper, args, quoted, _source = part
            value = helper(ctx, *args)
            if quoted:
                out.append(json.dumps(value if isinstance(value, str) else str(value))[1:-1])
            else:
                out.append(json.dumps(value, default=str))
        return "".join(out)

    def render(self, ctx: Context) -> dict:
        return json.loads(self.render_text(ctx))

    def fields(self, ctx: Context) -> list[str]:
        return list(self.render(ctx))


def load_template(profile: str, faker: Faker | None = None, directory: Path = TEMPLATES_DIR) -> Template:
    """A profile name (`iot_4` -> `producers/templates/iot_4.json`) or a path to a template file.
    Read from disk each time, so edits apply when the generator switches to the profile."""
    path = Path(profile)
    if not path.suffix and not path.exists():
        path = directory / f"{profile}.json"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.json")))
        raise TemplateError(f"no template {profile!r} (known: {known})")
    template = Template.parse(path.stem, path.read_text(), faker)
    probe = Context(faker=faker or Faker(), rng=random.Random(0), devices=["probe-device"])
    try:
        record = template.render(probe)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{path} does not render to JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise TemplateError(f"{path} must render to a JSON object, got {type(record).__name__}")
    return template


def available_profiles(directory: Path = TEMPLATES_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.json"))
