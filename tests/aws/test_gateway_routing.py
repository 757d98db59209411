"""Which service and operation a request is, before anything is authenticated."""

import pytest

from aws.gateway.errors import CommonError
from aws.gateway.messages import HttpRequest
from aws.gateway.routing import Router

pytestmark = pytest.mark.unit

ROUTER = Router(["kinesis", "sts"])
SIGNED_FOR = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=00"


def request(method="POST", path="/", query="", body=b"", **headers) -> HttpRequest:
    return HttpRequest(method, path, query, [(k.replace("_", "-"), v) for k, v in headers.items()], body)


def test_json_services_are_named_by_x_amz_target():
    kinesis = request(x_amz_target="Kinesis_20131202.PutRecord", content_type="application/x-amz-json-1.1")
    assert ROUTER.needs_body(kinesis)
    route = ROUTER.route(kinesis)
    assert (route.service.service_name, route.operation().name, route.protocol.name) == ("kinesis", "PutRecord", "json")


def test_unknown_services_and_operations_are_unknown_operations():
    with pytest.raises(CommonError) as unknown:
        ROUTER.route(request(x_amz_target="DynamoDB_20120810.ListTables")).operation()
    assert unknown.value.wire("json") == ("UnknownOperationException", 400)
    assert unknown.value.message.startswith("DynamoDB_20120810.ListTables: ")
    with pytest.raises(CommonError, match="no operation 'Frobnicate'"):
        ROUTER.route(request(x_amz_target="Kinesis_20131202.Frobnicate")).operation()
    with pytest.raises(CommonError, match="UnknownOperation|no operation"):  # signed for Kinesis, names nothing
        ROUTER.route(request(authorization=SIGNED_FOR.format("kinesis"))).operation()


def test_query_services_are_named_by_action_and_version():
    form = request(body=b"Action=GetCallerIdentity&Version=2011-06-15",
                   content_type="application/x-www-form-urlencoded; charset=utf-8")
    route = ROUTER.route(form)
    assert (route.service.service_name, route.operation().name, route.protocol.name) == \
        ("sts", "GetCallerIdentity", "query")
    presigned = request("GET", query="Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Credential=AKID%2F20260101"
                                     "%2Fus-east-1%2Fsts%2Faws4_request")
    assert ROUTER.needs_body(presigned) and ROUTER.route(presigned).operation().name == "GetCallerIdentity"


def test_everything_else_is_s3_and_streamed_without_reading_the_body():
    for s3 in [request("PUT", "/raw/a.csv", authorization=SIGNED_FOR.format("s3"), content_length="5"),
               request("GET", "/raw", "list-type=2"),  # anonymous
               request("POST", "/raw/a.csv", "uploads", authorization=SIGNED_FOR.format("s3"),
                       content_type="application/x-www-form-urlencoded")]:  # S3 even with a form content type
        assert not ROUTER.needs_body(s3)
        assert ROUTER.route(s3) is None
