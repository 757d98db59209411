"""The JSON and query protocols against botocore's own client side: what botocore serializes we
parse back to the same parameters; what we write botocore parses back to the same result."""

import json
import random
from datetime import datetime, timezone
from urllib.parse import urlencode

import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from botocore.session import get_session

from aws.gateway.errors import AwsError, CommonError
from aws.gateway.messages import HttpRequest
from aws.gateway.protocols import JsonProtocol, QueryProtocol, _json_reader
from aws.gateway.registry import PROVIDERS
from tests.aws.modelkit import random_value

pytestmark = pytest.mark.unit

KINESIS = get_session().get_service_model("kinesis")
STS = get_session().get_service_model("sts")
WHEN = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)


def as_received(service_model, operation: str, params: dict) -> HttpRequest:
    """The HTTP request botocore makes for `operation(**params)`."""
    model = service_model.operation_model(operation)
    request = create_serializer(service_model.protocol).serialize_to_request(params, model)
    body = request["body"]
    if isinstance(body, dict):  # the query serializer leaves the form as a dict
        body = urlencode(body)
    body = body.encode() if isinstance(body, str) else (body or b"")
    headers = [(k.lower(), v) for k, v in request["headers"].items()]
    if service_model.protocol == "query":
        headers.append(("content-type", "application/x-www-form-urlencoded; charset=utf-8"))
    return HttpRequest("POST", "/", "", headers, body)


def parsed_by_botocore(service_model, operation: str, response) -> dict:
    model = service_model.operation_model(operation)
    parsed = create_parser(service_model.protocol).parse(
        {"body": response.body, "headers": response.headers, "status_code": response.status}, model.output_shape)
    parsed.pop("ResponseMetadata", None)
    return parsed


def test_json_requests_read_back_as_botocore_sent_them():
    params = {"StreamName": "orders", "Records": [
        {"Data": b"\x00\xffbinary", "PartitionKey": "k1"},
        {"Data": b"{}", "PartitionKey": "k2", "ExplicitHashKey": "42"}]}
    assert JsonProtocol().parse(KINESIS.operation_model("PutRecords"), as_received(KINESIS, "PutRecords", params)) \
        == params
    params = {"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_TIMESTAMP",
              "Timestamp": WHEN}
    parsed = JsonProtocol().parse(KINESIS.operation_model("GetShardIterator"),
                                  as_received(KINESIS, "GetShardIterator", params))
    assert parsed["Timestamp"].timestamp() == pytest.approx(WHEN.timestamp(), abs=0.001)


def test_json_bad_bodies_are_serialization_errors_naming_the_field():
    operation = KINESIS.operation_model("PutRecord")
    with pytest.raises(CommonError) as bad:
        JsonProtocol().parse(operation, HttpRequest("POST", "/", "", [], b'{"StreamName":"s","Data":"not base64!"}'))
    assert bad.value.wire("json") == ("SerializationException", 400) and "'Data'" in bad.value.message
    with pytest.raises(CommonError, match="not valid JSON"):
        JsonProtocol().parse(operation, HttpRequest("POST", "/", "", [], b"{"))
    with pytest.raises(CommonError, match="not CBOR.*AWS_CBOR_DISABLE"):  # what Java SDKs send Kinesis by default
        JsonProtocol().parse(operation, HttpRequest("POST", "/", "", [("content-type", "application/x-amz-cbor-1.1")],
                                                    b"\xbf\xff"))


def test_json_results_parse_in_botocore_as_written():
    result = {"Records": [{"SequenceNumber": "49000000000000000000000000000007", "Data": b"\x00payload",
                           "PartitionKey": "k", "ApproximateArrivalTimestamp": WHEN}],
              "NextShardIterator": "it", "MillisBehindLatest": 0}
    response = JsonProtocol().serialize(KINESIS.operation_model("GetRecords"), result, "req-1")
    assert response.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert response.headers["x-amzn-RequestId"] == "req-1"
    parsed = parsed_by_botocore(KINESIS, "GetRecords", response)
    assert parsed["Records"][0]["Data"] == b"\x00payload"
    assert parsed["Records"][0]["ApproximateArrivalTimestamp"] == WHEN  # milliseconds kept
    assert {k: v for k, v in parsed.items() if k != "Records"} == {"NextShardIterator": "it", "MillisBehindLatest": 0}


def test_a_result_member_the_model_does_not_have_is_a_provider_bug():
    with pytest.raises(TypeError, match="no member 'Shards'"):
        JsonProtocol().serialize(KINESIS.operation_model("PutRecord"), {"Shards": []}, "r")


def errors_as_botocore_sees_them(service_model, protocol, error) -> tuple[int, dict]:
    response = protocol.serialize_error(service_model, error, "req-2")
    parsed = create_parser(service_model.protocol).parse(
        {"body": response.body, "headers": response.headers, "status_code": response.status}, None)
    return response.status, parsed["Error"]


def test_json_errors_carry_code_and_message_where_botocore_reads_them():
    not_found = AwsError("ResourceNotFoundException", "Stream x under account 000000000000 not found.")
    status, error = errors_as_botocore_sees_them(KINESIS, JsonProtocol(), not_found)
    assert status == 400
    assert error == {"Code": "ResourceNotFoundException", "Message": "Stream x under account 000000000000 not found."}
    status, error = errors_as_botocore_sees_them(KINESIS, JsonProtocol(), CommonError("UnrecognizedClient", "no"))
    assert (status, error["Code"]) == (400, "UnrecognizedClientException")


def test_query_requests_read_back_as_botocore_sent_them():
    params = {"RoleArn": "arn:aws:iam::000000000000:role/r", "RoleSessionName": "lab", "DurationSeconds": 900,
              "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/a"}, {"arn": "arn:aws:iam::aws:policy/b"}],
              "Tags": [{"Key": "team", "Value": "data"}], "TransitiveTagKeys": ["team"]}
    request = as_received(STS, "AssumeRole", params)
    assert QueryProtocol().parse(STS.operation_model("AssumeRole"), request) == params
    assert QueryProtocol().parse(STS.operation_model("GetCallerIdentity"),
                                 as_received(STS, "GetCallerIdentity", {})) == {}


def test_query_results_and_errors_are_sts_xml():
    identity = {"UserId": "analyst", "Account": "000000000000", "Arn": "arn:aws:iam::000000000000:user/analyst"}
    response = QueryProtocol().serialize(STS.operation_model("GetCallerIdentity"), identity, "req-3")
    assert response.body.startswith(b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                                    b"<GetCallerIdentityResult>")
    assert parsed_by_botocore(STS, "GetCallerIdentity", response) == identity
    status, error = errors_as_botocore_sees_them(STS, QueryProtocol(), CommonError("InvalidSignature", "bad"))
    assert (status, error["Code"], error["Message"], error["Type"]) == (403, "SignatureDoesNotMatch", "bad", "Sender")


def _jumbled(value, rng: random.Random):
    """`value` (a JSON body) with, now and then, a value swapped for one of another JSON type."""
    if rng.random() < 0.04:
        return rng.choice([None, "x", "!!", 7, 1.5, True, [], {}, "2026-01-02T03:04:05Z"])
    if isinstance(value, dict):
        return {key: _jumbled(item, rng) for key, item in value.items()}
    if isinstance(value, list):
        return [_jumbled(item, rng) for item in value]
    return value


def test_the_json_fast_reader_reads_what_the_full_walk_reads_or_leaves_it_to_the_walk():
    """`JsonProtocol.parse` reads a body with readers made per shape and runs the full walk only
    when they fail (to word the error). Whatever they read must be what the walk reads. Checked on
    every operation of every service served, with bodies botocore serialized from random requests,
    some of their values swapped for other JSON types."""
    rng = random.Random(20261202)
    read = fell_back = 0
    for service in PROVIDERS:
        model = get_session().get_service_model(service)
        serializer = create_serializer(model.metadata["protocol"])
        for name in model.operation_names:
            operation = model.operation_model(name)
            if operation.input_shape is None or model.metadata["protocol"] != "json":
                continue
            for _ in range(40):
                try:
                    body = serializer.serialize_to_request(random_value(operation.input_shape, rng), operation)["body"]
                except Exception:  # noqa: BLE001 - a request botocore itself would not send
                    continue
                body = _jumbled(json.loads(body or b"{}"), rng)
                try:
                    walked = JsonProtocol()._read(operation.input_shape, body, "")
                except CommonError:
                    walked = "refused"
                try:
                    fast = _json_reader(operation.input_shape)(body)
                except Exception:  # noqa: BLE001 - parse falls back to the walk
                    fell_back += 1
                    continue
                read += 1
                assert fast == walked, (service, name, body)
    assert read > 1000 and fell_back > 100, (read, fell_back)
