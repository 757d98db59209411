"""The wire protocols of the AWS services served here, driven by botocore's service models: request
parameters are read and results written by walking the operation's input and output shapes.

JSON (1.0 and 1.1: Kinesis, Firehose, Glue, Athena): `X-Amz-Target: <prefix>.<Operation>`, a JSON
body, blobs in base64, timestamps as epoch seconds. Query (STS): a url-encoded form with
`Action`/`Version`, answered in XML.
"""

from __future__ import annotations

import base64
import binascii
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import format_datetime
from functools import cache, partial
from typing import Any, ClassVar
from xml.etree.ElementTree import Element, SubElement, tostring

import orjson
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.utils import parse_timestamp

from aws.gateway.errors import AwsError, CommonError
from aws.gateway.messages import HttpRequest, HttpResponse


class WireProtocol(ABC):
    name: ClassVar[str]

    @abstractmethod
    def parse(self, operation: OperationModel, request: HttpRequest) -> dict:
        """The operation's parameters, shaped as boto3 takes them (bytes for blobs, datetimes)."""

    @abstractmethod
    def serialize(self, operation: OperationModel, result: dict, request_id: str) -> HttpResponse:
        """A provider's result (shaped as boto3 returns it) as the operation's response."""

    @abstractmethod
    def serialize_error(self, service: ServiceModel | None, error: AwsError, request_id: str) -> HttpResponse:
        """An error in the shape the service's SDK parses into its exception classes."""


def protocol_for(service: ServiceModel) -> WireProtocol:
    if service.protocol == "json":
        return JsonProtocol(service.metadata.get("jsonVersion", "1.0"))
    if service.protocol == "query":
        return QueryProtocol()
    raise CommonError("NotImplemented", f"the {service.protocol} protocol of {service.service_name} is not served here")


def error_code_and_status(service: ServiceModel | None, error: AwsError, protocol: str) -> tuple[str, int]:
    """The code and status on the wire: common errors per protocol; a modeled error with the code
    and HTTP status its shape declares; anything else 400."""
    code, status = error.wire(protocol)
    if service is not None and code in service.shape_names:
        declared = service.shape_for(code).metadata.get("error", {})
        code = declared.get("code", code)
        status = status or declared.get("httpStatusCode")
    return code, status or 400


def _wire_name(name: str, shape: Shape) -> str:
    return shape.serialization.get("name", name)


def _decode_blob(value: Any, path: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise CommonError("Serialization", f"Value at '{path}' is not valid base64-encoded binary data") from None


def _decode_timestamp(value: Any, path: str) -> datetime:
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, timezone.utc)
        return parse_timestamp(value).astimezone(timezone.utc)
    except (TypeError, ValueError, OverflowError):
        raise CommonError("Serialization", f"Value '{value}' at '{path}' is not a valid timestamp") from None


class JsonProtocol(WireProtocol):
    name = "json"

    def __init__(self, version: str = "1.1") -> None:
        self.content_type = f"application/x-amz-json-{version}"

    def parse(self, operation: OperationModel, request: HttpRequest) -> dict:
        if "cbor" in (request.header("content-type") or ""):
            raise CommonError("Serialization", "This endpoint speaks AWS JSON, not CBOR. Java SDKs send Kinesis CBOR "
                                               "unless told not to: AWS_CBOR_DISABLE=true (SDK v1), "
                                               "-Daws.cborEnabled=false (SDK v2).")
        if operation.input_shape is None:
            return {}
        try:
            body = _loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise CommonError("Serialization", f"The request body is not valid JSON: {exc}") from None
        try:
            return _json_reader(operation.input_shape)(body)
        except Exception:  # noqa: BLE001 - the walk below finds what it was and names where
            return self._read(operation.input_shape, body, "")

    def _read(self, shape: Shape, value: Any, path: str) -> Any:
        """The request's parameters, or the error naming where the body is not what the shape says."""
        kind = shape.type_name
        if value is None:
            return None
        if kind == "structure":
            if not isinstance(value, dict):
                raise CommonError("Serialization", f"Expected an object at '{path or 'body'}'")
            read = {}
            for name, member in shape.members.items():
                wire = _wire_name(name, member)
                if wire in value and value[wire] is not None:
                    read[name] = self._read(member, value[wire], f"{path}.{name}" if path else name)
            return read
        if kind == "list":
            if not isinstance(value, list):
                raise CommonError("Serialization", f"Expected a list at '{path}'")
            return [self._read(shape.member, item, f"{path}[{i}]") for i, item in enumerate(value)]
        if kind == "map":
            if not isinstance(value, dict):
                raise CommonError("Serialization", f"Expected an object at '{path}'")
            return {key: self._read(shape.value, item, f"{path}.{key}") for key, item in value.items()}
        if kind == "blob":
            return _decode_blob(value, path)
        if kind == "timestamp":
            return _decode_timestamp(value, path)
        return value  # scalars: their types are checked by validation

    def serialize(self, operation: OperationModel, result: dict, request_id: str) -> HttpResponse:
        body = _json_writer(operation.output_shape)(result) if operation.output_shape is not None else {}
        return HttpResponse(200, _dumps(body), self._headers(request_id))

    def serialize_error(self, service: ServiceModel | None, error: AwsError, request_id: str) -> HttpResponse:
        code, status = error_code_and_status(service, error, self.name)
        body = json.dumps({"__type": code, "message": error.message}).encode()
        return HttpResponse(status, body, {**self._headers(request_id), "x-amzn-ErrorType": code})

    def _headers(self, request_id: str) -> dict[str, str]:
        return {"Content-Type": self.content_type, "x-amzn-RequestId": request_id}


# orjson reads and writes PutRecords' and GetRecords' bodies 2x and 20x faster than json. What it
# refuses (NaN, lone surrogates; integers past 64 bits when writing) json reads and writes as
# before, and json's errors are the ones answered. (It reads integers past 64 bits as floats: both
# fail validation, as no member allows them.)

def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()


# Readers and writers made once per shape. Walking the shape for each value took most of the
# JSON protocol's time on PutRecords' and GetRecords' hundreds of records. Members' readers and
# writers are found on first use, not when made: shapes can contain themselves.

def _identity(value: Any) -> Any:
    return value


_strict_base64 = partial(binascii.a2b_base64, strict_mode=True)  # b64decode's own call, without its Python frame


@cache
def _json_reader(shape: Shape) -> Callable[[Any], Any]:
    """What `JsonProtocol._read` makes of a valid body, quickly; on anything else it raises, and
    `_read` runs to word the error."""
    kind = shape.type_name
    if kind == "structure":
        members: list[tuple[str, str, Callable[[Any], Any]]] = []

        def structure(value: Any) -> dict:
            if type(value) is not dict:
                raise TypeError
            if not members:
                members.extend((name, _wire_name(name, member), _json_reader(member))
                               for name, member in shape.members.items())
            return {name: read(value[wire]) for name, wire, read in members if value.get(wire) is not None}
        return structure
    if kind in ("list", "map"):
        expected = list if kind == "list" else dict

        def container(value: Any) -> list | dict:
            if type(value) is not expected:
                raise TypeError
            if kind == "list":
                read = _json_reader(shape.member)
                return [None if item is None else read(item) for item in value]
            read = _json_reader(shape.value)
            return {key: None if item is None else read(item) for key, item in value.items()}
        return container
    if kind == "blob":
        return _strict_base64  # raises ValueError on anything but base64 in ASCII, as b64decode(validate=True)
    if kind == "timestamp":
        return lambda value: _decode_timestamp(value, "")
    return _identity


@cache
def _json_writer(shape: Shape) -> Callable[[Any], Any]:
    """A provider's result for `shape` as JSON values."""
    kind = shape.type_name
    if kind == "structure":
        members: dict[str, tuple[str, Callable[[Any], Any]]] = {}

        def structure(value: dict) -> dict:
            if not members:
                members.update((name, (_wire_name(name, member), _json_writer(member)))
                               for name, member in shape.members.items())
            written = {}
            for name, item in value.items():
                if name not in members:
                    raise TypeError(f"{shape.name} has no member {name!r}")  # a provider bug, not a client's
                if item is not None:
                    wire, write = members[name]
                    written[wire] = write(item)
            return written
        return structure
    if kind == "list":
        return lambda value: list(map(_json_writer(shape.member), value))
    if kind == "map":
        return lambda value: {key: _json_writer(shape.value)(item) for key, item in value.items()}
    if kind == "blob":
        return lambda value: base64.b64encode(value).decode()
    if kind == "timestamp":
        form = shape.serialization.get("timestampFormat", "unixTimestamp")
        return lambda value: _timestamp(value, form)
    return _identity


def _timestamp(value: datetime | float, form: str) -> Any:
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if form == "iso8601":
        return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if form == "rfc822":
        return format_datetime(moment.astimezone(timezone.utc), usegmt=True)
    return round(moment.timestamp(), 3)


class QueryProtocol(WireProtocol):
    """AWS's query protocol: `Name.member.N` lists, `Name.entry.N.key` maps, `A.B` structures."""

    name = "query"

    def parse(self, operation: OperationModel, request: HttpRequest) -> dict:
        if operation.input_shape is None:
            return {}
        return self._read(operation.input_shape, request.form, "") or {}

    def _read(self, shape: Shape, form: dict[str, str], prefix: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            read = {}
            for name, member in shape.members.items():
                key = f"{prefix}.{_wire_name(name, member)}" if prefix else _wire_name(name, member)
                value = self._read(member, form, key)
                if value is not None:
                    read[name] = value
            return read if read or not prefix else None
        if kind == "list":
            if form.get(prefix) == "":
                return []
            flat = shape.serialization.get("flattened")
            base = prefix if flat else f"{prefix}.{shape.member.serialization.get('name', 'member')}"
            return self._items(form, base, lambda key: self._read(shape.member, form, key))
        if kind == "map":
            base = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
            key_name = shape.key.serialization.get("name", "key")
            value_name = shape.value.serialization.get("name", "value")
            entries = self._items(form, base, lambda key: (form.get(f"{key}.{key_name}"),
                                                           self._read(shape.value, form, f"{key}.{value_name}")))
            return None if entries is None else dict(entries)
        if prefix not in form:
            return None
        return self._scalar(shape, form[prefix], prefix)

    @staticmethod
    def _items(form: dict[str, str], base: str, read_item) -> list | None:
        items, index = [], 1
        while any(key == f"{base}.{index}" or key.startswith(f"{base}.{index}.") for key in form):
            items.append(read_item(f"{base}.{index}"))
            index += 1
        return items or None

    @staticmethod
    def _scalar(shape: Shape, text: str, path: str) -> Any:
        kind = shape.type_name
        try:
            if kind in ("integer", "long"):
                return int(text)
            if kind in ("float", "double"):
                return float(text)
        except ValueError:
            raise CommonError("Validation", f"1 validation error detected: Value '{text}' at '{path}' "
                                            f"failed to satisfy constraint: Member must be a number") from None
        if kind == "boolean":
            if text.lower() not in ("true", "false"):
                raise CommonError("Validation", f"1 validation error detected: Value '{text}' at '{path}' "
                                                "failed to satisfy constraint: Member must be true or false")
            return text.lower() == "true"
        if kind == "blob":
            return _decode_blob(text, path)
        if kind == "timestamp":
            return _decode_timestamp(text, path)
        return text

    def serialize(self, operation: OperationModel, result: dict, request_id: str) -> HttpResponse:
        service = operation.service_model
        root = Element(f"{operation.name}Response", xmlns=service.metadata.get("xmlNamespace", ""))
        output = operation.output_shape
        if output is not None:
            wrapper = output.serialization.get("resultWrapper", f"{operation.name}Result")
            self._write_members(SubElement(root, wrapper), output, result)
        SubElement(SubElement(root, "ResponseMetadata"), "RequestId").text = request_id
        return self._xml(200, root, request_id)

    def _write_members(self, parent: Element, shape: Shape, value: dict) -> None:
        for name, item in value.items():
            if name not in shape.members:
                raise TypeError(f"{shape.name} has no member {name!r}")
            if item is not None:
                member = shape.members[name]
                self._write(parent, _wire_name(name, member), member, item)

    def _write(self, parent: Element, name: str, shape: Shape, value: Any) -> None:
        kind = shape.type_name
        if kind == "structure":
            self._write_members(SubElement(parent, name), shape, value)
        elif kind == "list":
            if shape.serialization.get("flattened"):
                item_name, holder = shape.member.serialization.get("name", name), parent
            else:
                item_name, holder = shape.member.serialization.get("name", "member"), SubElement(parent, name)
            for item in value:
                self._write(holder, item_name, shape.member, item)
        elif kind == "map":
            holder = SubElement(parent, name)
            for key, item in value.items():
                entry = SubElement(holder, "entry")
                SubElement(entry, shape.key.serialization.get("name", "key")).text = str(key)
                self._write(entry, shape.value.serialization.get("name", "value"), shape.value, item)
        else:
            SubElement(parent, name).text = self._text(shape, value)

    @staticmethod
    def _text(shape: Shape, value: Any) -> str:
        if shape.type_name == "boolean":
            return "true" if value else "false"
        if shape.type_name == "blob":
            return base64.b64encode(value).decode()
        if shape.type_name == "timestamp":
            return str(_timestamp(value, shape.serialization.get("timestampFormat", "iso8601")))
        return str(value)

    def serialize_error(self, service: ServiceModel | None, error: AwsError, request_id: str) -> HttpResponse:
        code, status = error_code_and_status(service, error, self.name)
        namespace = service.metadata.get("xmlNamespace", "") if service is not None else ""
        root = Element("ErrorResponse", xmlns=namespace)
        detail = SubElement(root, "Error")
        SubElement(detail, "Type").text = "Receiver" if status >= 500 else "Sender"
        SubElement(detail, "Code").text = code
        SubElement(detail, "Message").text = error.message
        SubElement(root, "RequestId").text = request_id
        return self._xml(status, root, request_id)

    @staticmethod
    def _xml(status: int, root: Element, request_id: str) -> HttpResponse:
        body = tostring(root, encoding="utf-8", xml_declaration=False)
        return HttpResponse(status, body, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id})
