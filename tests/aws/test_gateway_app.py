"""The endpoint's ASGI app driven by real boto3 clients, in process: botocore's HTTP is replaced by
calls into the app, Kinesis by a stand-in provider, SeaweedFS by a stand-in S3 server that checks
every signature it receives."""

import asyncio
import io
from xml.sax.saxutils import escape

import boto3
import botocore
import httpx
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aws.gateway import sigv4
from aws.gateway.app import create_app
from aws.gateway.errors import AwsError, CommonError
from aws.gateway.messages import HttpRequest
from aws.gateway.provider import Provider
from aws.gateway.registry import Registry
from aws.s3.proxy import S3Proxy
from lakelab.resources import resources
from lakelab.settings import Settings

pytestmark = pytest.mark.unit

ENDPOINT = "http://127.0.0.1:4566"
SETTINGS = Settings()
ADMIN = (SETTINGS.s3_access_key, SETTINGS.s3_secret_key.get_secret_value())
ANALYST = resources().user("analyst").keys()


class StandInKinesis(Provider):
    def list_streams(self, context, params):
        return {"StreamNames": [context.arn("stream/orders")], "HasMoreStreams": False}

    def describe_stream(self, context, params):
        raise AwsError("ResourceNotFoundException", f"Stream {params['StreamName']} under account 000000000000 "
                                                    "not found.")


def stand_in_s3(objects: dict[str, bytes], seen: list[HttpRequest]) -> Starlette:
    """An S3 server that refuses any request whose SigV4 signature does not verify."""
    async def handle(request: Request) -> Response:
        scope = request.scope
        message = HttpRequest(request.method, scope["raw_path"].decode(), scope["query_string"].decode(),
                              [(k.decode(), v.decode()) for k, v in request.headers.raw], await request.body())
        try:
            sigv4.verify(message, sigv4.parse(message), ADMIN[1])
        except CommonError as error:
            return Response(f"<Error><Code>SignatureDoesNotMatch</Code><Message>{escape(error.message)}</Message>"
                            "</Error>", 403, media_type="application/xml")
        seen.append(message)
        if request.method == "PUT":
            objects[message.path] = message.body
            return Response(b"", 200, headers={"ETag": '"e"'})
        if message.path in objects:
            return Response(objects[message.path], 200, media_type="application/octet-stream")
        return Response("<Error><Code>NoSuchKey</Code><Message>none</Message></Error>", 404,
                        media_type="application/xml")

    return Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "PUT", "HEAD"])])


class _Raw(io.BytesIO):
    def stream(self, **_):
        yield self.getvalue()


@pytest.fixture
def s3_server():
    objects, seen = {}, []
    return objects, seen, stand_in_s3(objects, seen)


def call(app, method: str, url: str, **options) -> httpx.Response:
    async def send():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
            return await http.request(method, url, **options)

    return asyncio.run(send())


@pytest.fixture
def app(s3_server):
    registry = Registry(SETTINGS, {"kinesis": StandInKinesis, "sts": "aws.sts.provider:StsProvider"})
    proxy = S3Proxy("http://s3.invalid:8333", transport=httpx.ASGITransport(app=s3_server[2]))
    return create_app(SETTINGS, registry, proxy)


@pytest.fixture
def client(app):
    """client(service, keys) -> a boto3 client whose requests go into the app."""
    def send(request, **_):
        body = request.body.read() if hasattr(request.body, "read") else (request.body or b"")
        answer = call(app, request.method, request.url, headers=dict(request.headers), content=body)
        return AWSResponse(request.url, answer.status_code, answer.headers, _Raw(answer.content))

    def make(service: str, keys=ADMIN, **config):
        made = boto3.client(service, endpoint_url=ENDPOINT, region_name="eu-west-1", aws_access_key_id=keys[0],
                            aws_secret_access_key=keys[1],
                            config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}, **config))
        made.meta.events.register("before-send", send)
        return made

    return make


def code_of(call) -> tuple[str, int]:
    with pytest.raises(ClientError) as failed:
        call()
    return failed.value.response["Error"]["Code"], failed.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_sts_tells_each_identity_who_it_is(client):
    assert client("sts").get_caller_identity()["Arn"] == "arn:aws:iam::000000000000:user/admin"
    analyst = client("sts", ANALYST).get_caller_identity()
    assert (analyst["UserId"], analyst["Account"], analyst["Arn"]) == \
        (ANALYST[0], "000000000000", "arn:aws:iam::000000000000:user/analyst")


def test_a_presigned_sts_url_works_as_a_plain_get(app, client):
    url = client("sts", ANALYST).generate_presigned_url("get_caller_identity", HttpMethod="GET", ExpiresIn=60)
    answer = call(app, "GET", url)
    assert answer.status_code == 200 and b"<Arn>arn:aws:iam::000000000000:user/analyst</Arn>" in answer.content
    assert call(app, "GET", url.replace("Expires=60", "Expires=61")).status_code == 403


def test_providers_get_the_signing_region_and_their_errors_become_sdk_exceptions(client):
    kinesis = client("kinesis")
    assert kinesis.list_streams()["StreamNames"] == ["arn:aws:kinesis:eu-west-1:000000000000:stream/orders"]
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException, match="Stream gone under account"):
        kinesis.describe_stream(StreamName="gone")


def test_unknown_keys_wrong_secrets_and_unsigned_requests_are_refused_as_aws_does(client):
    assert code_of(client("kinesis", ("AKIAUNKNOWN", "x")).list_streams) == ("UnrecognizedClientException", 400)
    assert code_of(client("sts", ("AKIAUNKNOWN", "x")).get_caller_identity) == ("InvalidClientTokenId", 403)
    assert code_of(client("kinesis", (ADMIN[0], "wrong")).list_streams) == ("InvalidSignatureException", 400)
    assert code_of(client("sts", (ADMIN[0], "wrong")).get_caller_identity) == ("SignatureDoesNotMatch", 403)
    unsigned = client("kinesis", signature_version=botocore.UNSIGNED)
    assert code_of(unsigned.list_streams) == ("MissingAuthenticationTokenException", 400)


def test_declared_users_may_not_call_kinesis(client):
    kinesis = client("kinesis", ANALYST)
    with pytest.raises(kinesis.exceptions.AccessDeniedException, match="user/analyst is not authorized to perform: "
                                                                       "kinesis:ListStreams"):
        kinesis.list_streams()


def test_bad_parameters_and_missing_operations(client):
    unchecked = client("kinesis", parameter_validation=False)
    with pytest.raises(ClientError, match=r"\(ValidationException\).*Invalid value for parameter Limit, value: 0"):
        unchecked.list_streams(Limit=0)  # botocore's words for what SDKs check themselves
    with pytest.raises(ClientError, match="Value '10001' at 'limit' failed to satisfy constraint"):
        unchecked.list_streams(Limit=10001)  # AWS's words for the rest
    assert code_of(lambda: unchecked.split_shard(StreamName="s", ShardToSplit="x", NewStartingHashKey="1")) == \
        ("NotImplemented", 501)


def test_s3_is_passed_through_with_its_signature_intact(client, s3_server):
    objects, seen, _ = s3_server
    s3 = client("s3")
    body = bytes(range(256)) * 12_289  # 3 MiB and then some
    s3.put_object(Bucket="raw", Key="sales/2026 01/ü+1.csv", Body=body)
    assert s3.get_object(Bucket="raw", Key="sales/2026 01/ü+1.csv")["Body"].read() == body
    put = seen[0]
    assert put.path == "/raw/sales/2026%2001/%C3%BC%2B1.csv"
    assert put.header("host") == "127.0.0.1:4566" and put.header("content-length") == str(len(body))
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="raw", Key="missing")


def test_s3_answers_service_unavailable_when_its_server_is_down():
    def refuse(request):
        raise httpx.ConnectError("connection refused")
    registry = Registry(SETTINGS, {"sts": "aws.sts.provider:StsProvider"})
    app = create_app(SETTINGS, registry, S3Proxy("http://127.0.0.1:9", transport=httpx.MockTransport(refuse)))
    answer = call(app, "GET", f"{ENDPOINT}/raw/a.csv")
    assert answer.status_code == 503 and b"<Code>ServiceUnavailable</Code>" in answer.content
