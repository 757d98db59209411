"""Requests checked against the operation's input shape, answered as AWS's front ends answer."""

import random

import pytest
from botocore.session import get_session
from botocore.validate import ParamValidator

from aws.gateway.errors import CommonError
from aws.gateway.registry import PROVIDERS
from aws.gateway.validation import _conforms, constraint_violations, validate
from tests.aws.modelkit import random_value

pytestmark = pytest.mark.unit

KINESIS = get_session().get_service_model("kinesis")


def problems(operation: str, params: dict) -> str:
    with pytest.raises(CommonError) as refused:
        validate(KINESIS.operation_model(operation).input_shape, params)
    assert refused.value.wire("json") == ("ValidationException", 400)
    assert refused.value.wire("query") == ("ValidationError", 400)
    return refused.value.message


def test_valid_parameters_pass():
    validate(KINESIS.operation_model("PutRecords").input_shape,
             {"StreamName": "s", "Records": [{"Data": b"x", "PartitionKey": "k"}]})


def test_missing_required_and_wrong_types_name_the_field():
    assert 'Missing required parameter in input: "ShardIteratorType"' in problems(
        "GetShardIterator", {"StreamName": "s", "ShardId": "shardId-000000000000"})
    assert "Invalid type for parameter Limit" in problems("GetRecords", {"ShardIterator": "x", "Limit": "ten"})
    assert 'Unknown parameter in input: "Bogus"' in problems("ListStreams", {"Bogus": 1})


def test_constraints_only_servers_check_are_checked_with_aws_wording():
    message = problems("DescribeStream", {"StreamName": "bad name!"})
    assert message == ("1 validation error detected: Value 'bad name!' at 'streamName' failed to satisfy constraint: "
                       "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
    assert "Member must have length less than or equal to 128" in problems("DescribeStream", {"StreamName": "s" * 129})
    assert "Value '10001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to " \
           "10000" in problems("GetRecords", {"ShardIterator": "x", "Limit": 10001})
    assert "Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, " \
           "AT_TIMESTAMP]" in problems("GetShardIterator", {"StreamName": "s", "ShardId": "shardId-000000000000",
                                                            "ShardIteratorType": "OLDEST"})


def test_nested_members_are_named_by_their_path_and_errors_are_counted():
    message = problems("PutRecords", {"StreamName": "s", "Records": [
        {"Data": b"x", "PartitionKey": "k"}, {"Data": b"x", "PartitionKey": "k" * 257, "ExplicitHashKey": "-1"}]})
    assert message.startswith("2 validation errors detected: ")
    assert "at 'records.2.member.partitionKey' failed to satisfy constraint: Member must have length less than or " \
           "equal to 256" in message
    assert "Value '-1' at 'records.2.member.explicitHashKey'" in message


def test_the_one_pass_check_passes_only_what_both_full_checks_pass():
    """`validate` skips botocore's ParamValidator and the constraint walk when its one-pass check
    says a request is valid; that must never let through what they would refuse. Checked on every
    operation of every service served, with requests made at random (seeded) from the model."""
    rng = random.Random(20261202)
    passed = refused = 0
    for service in PROVIDERS:
        model = get_session().get_service_model(service)
        for name in model.operation_names:
            shape = model.operation_model(name).input_shape
            if shape is None:
                continue
            for _ in range(60):
                params = random_value(shape, rng)
                if _conforms(shape)(params):
                    passed += 1
                    assert not ParamValidator().validate(params, shape).has_errors(), (service, name, params)
                    assert constraint_violations(shape, params, "") == [], (service, name, params)
                else:
                    refused += 1
    assert passed > 1000 and refused > 1000, (passed, refused)  # both sides of the check were exercised
