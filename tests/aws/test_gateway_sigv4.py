"""SigV4 checked on the server side: requests signed by botocore's own signer verify, any change
to what was signed, or the wrong secret, does not."""

from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from aws.gateway import sigv4
from aws.gateway.errors import CommonError
from aws.gateway.messages import HttpRequest

pytestmark = pytest.mark.unit

KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
URL = "http://127.0.0.1:4566/"


def signed(body: bytes = b'{"StreamName":"orders"}', service: str = "kinesis",
           headers: dict | None = None) -> AWSRequest:
    request = AWSRequest("POST", URL, data=body, headers={
        "X-Amz-Target": "Kinesis_20131202.DescribeStream", "Content-Type": "application/x-amz-json-1.1",
        "User-Agent": "test", **(headers or {})})
    SigV4Auth(Credentials(KEY, SECRET), service, "eu-west-1").add_auth(request)
    return request


def received(request: AWSRequest, **changes) -> HttpRequest:
    """The request as the endpoint gets it over HTTP: lower-case names, Host added by the client."""
    prepared = request.prepare()
    path, _, query = prepared.url.split("127.0.0.1:4566", 1)[1].partition("?")
    headers = [("host", "127.0.0.1:4566")] + [(k.lower(), v.decode() if isinstance(v, bytes) else v)
                                              for k, v in prepared.headers.items()]
    message = HttpRequest(prepared.method, path, query, headers, prepared.body or b"")
    return HttpRequest(**{**message.__dict__, **changes})


def test_a_request_signed_by_botocore_verifies():
    request = received(signed())
    claim = sigv4.parse(request)
    assert (claim.access_key, claim.region, claim.service) == (KEY, "eu-west-1", "kinesis")
    assert "x-amz-target" in claim.signed_headers
    sigv4.verify(request, claim, SECRET)


def test_the_wrong_secret_is_refused():
    request = received(signed())
    with pytest.raises(CommonError) as refused:
        sigv4.verify(request, sigv4.parse(request), "not-the-secret")
    assert refused.value.code == "InvalidSignature"
    assert refused.value.wire("json") == ("InvalidSignatureException", 400)
    assert refused.value.wire("query") == ("SignatureDoesNotMatch", 403)


@pytest.mark.parametrize("change", [
    {"body": b'{"StreamName":"other"}'},
    {"path": "/other"},
    {"query": "a=1"},
])
def test_a_changed_body_path_or_query_is_refused(change):
    request = received(signed(), **change)
    with pytest.raises(CommonError, match="does not match"):
        sigv4.verify(request, sigv4.parse(request), SECRET)


def test_signed_headers_are_covered_and_others_are_not():
    original = received(signed())
    retargeted = [(k, "Kinesis_20131202.DeleteStream" if k == "x-amz-target" else v) for k, v in original.headers]
    with pytest.raises(CommonError, match="does not match"):
        sigv4.verify(received(signed(), headers=retargeted), sigv4.parse(original), SECRET)
    relayed = received(signed(), headers=original.headers + [("x-forwarded-for", "10.0.0.1")])
    sigv4.verify(relayed, sigv4.parse(relayed), SECRET)  # user-agent and proxies' headers are not signed


def test_an_old_signature_is_expired_and_the_scope_date_must_match():
    request = received(signed())
    claim = sigv4.parse(request)
    later = datetime.now(timezone.utc) + timedelta(minutes=16)
    with pytest.raises(CommonError, match="Signature expired"):
        sigv4.verify(request, claim, SECRET, now=later)
    wrong_date = sigv4.Signature(**{**claim.__dict__, "date": "20000101"})
    with pytest.raises(CommonError, match="Date in Credential scope does not match"):
        sigv4.verify(request, wrong_date, SECRET)


def test_an_incomplete_authorization_header_names_what_is_missing():
    request = received(signed())
    headers = [(k, "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kinesis/aws4_request" if k == "authorization"
                else v) for k, v in request.headers]
    with pytest.raises(CommonError) as incomplete:
        sigv4.parse(received(signed(), headers=headers))
    assert incomplete.value.code == "IncompleteSignature"
    assert "requires 'Signature' parameter" in incomplete.value.message
    assert "requires 'SignedHeaders' parameter" in incomplete.value.message
    with pytest.raises(CommonError, match="Unsupported AWS 'algorithm'"):
        sigv4.parse(received(signed(), headers=[("authorization", "AWS AKID:c2ln")]))


def test_an_unsigned_request_has_no_claim_and_the_scope_names_the_service():
    assert sigv4.parse(HttpRequest("GET", "/bucket/key", "", [("host", "x")])) is None
    assert sigv4.scope_service(received(signed(service="sts"))) == "sts"
    assert sigv4.scope_service(HttpRequest("GET", "/b", "", [])) is None


def test_presigned_urls_verify_for_query_services_and_s3():
    session = boto3.Session(aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name="us-east-1")
    for service, operation, params in [("sts", "get_caller_identity", {}),
                                       ("s3", "get_object", {"Bucket": "raw", "Key": "a b/ü+1.csv"})]:
        config = Config(signature_version="s3v4" if service == "s3" else None)  # s3 presigns SigV2 by default
        client = session.client(service, endpoint_url="http://127.0.0.1:4566", config=config)
        url = client.generate_presigned_url(operation, Params=params, ExpiresIn=60, HttpMethod="GET")
        path, _, query = url.split("127.0.0.1:4566", 1)[1].partition("?")
        request = HttpRequest("GET", path, query, [("host", "127.0.0.1:4566")])
        claim = sigv4.parse(request)
        assert claim.presigned and claim.service == service
        sigv4.verify(request, claim, SECRET)
        with pytest.raises(CommonError, match="does not match"):
            sigv4.verify(HttpRequest("GET", path + "x", query, request.headers), claim, SECRET)
        with pytest.raises(CommonError, match="expired"):
            sigv4.verify(request, claim, SECRET, now=datetime.now(timezone.utc) + timedelta(seconds=61))
