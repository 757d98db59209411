"""AWS Signature Version 4, checked on the server side by recomputing it with botocore's own signer
over the request exactly as received (path, query, signed headers, body)."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from aws.gateway.errors import CommonError
from aws.gateway.messages import HttpRequest

ALGORITHM = "AWS4-HMAC-SHA256"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_SKEW = timedelta(minutes=15)
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.")


@dataclass(frozen=True)
class Signature:
    """What a request claims: who signed it, for which scope, over which headers."""

    access_key: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str  # X-Amz-Date, YYYYMMDDTHHMMSSZ
    expires: int | None = None  # presigned URLs only

    @property
    def presigned(self) -> bool:
        return self.expires is not None


def scope_service(request: HttpRequest) -> str | None:
    """The service named in the credential scope, read cheaply for routing (None if unsigned)."""
    credential = request.query_params.get("X-Amz-Credential")
    if credential is None:
        match = re.search(r"Credential=([^,\s]+)", request.header("authorization") or "")
        credential = match.group(1) if match else None
    parts = (credential or "").split("/")
    return parts[3] if len(parts) == 5 else None


def parse(request: HttpRequest) -> Signature | None:
    """The request's SigV4 claim; None if it carries no signature at all."""
    header = request.header("authorization")
    in_query = "X-Amz-Algorithm" in request.query_params
    if header and in_query:
        raise CommonError("InvalidSignature", "Found both 'X-Amz-Algorithm' as a query-string param and "
                                              "'Authorization' as HTTP header.")
    if header:
        return _from_header(request, header)
    if in_query:
        return _from_query(request.query_params)
    return None


def _from_header(request: HttpRequest, header: str) -> Signature:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise CommonError("IncompleteSignature", f"Unsupported AWS 'algorithm': '{algorithm}'. "
                                                 f"Only {ALGORITHM} (Signature Version 4) is accepted.")
    fields = dict(part.strip().partition("=")[::2] for part in re.split(r"[,\s]+", rest) if "=" in part)
    problems = [f"Authorization header requires '{name}' parameter."
                for name in ("Credential", "Signature", "SignedHeaders") if not fields.get(name)]
    timestamp = request.header("x-amz-date") or _from_http_date(request.header("date"))
    if timestamp is None:
        problems.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if problems:
        raise CommonError("IncompleteSignature", " ".join(problems) + f" Authorization={header}")
    return _claim(fields["Credential"], fields["SignedHeaders"], fields["Signature"], timestamp)


def _from_query(query: dict[str, str]) -> Signature:
    names = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date")
    problems = [f"AWS query-string parameters must include '{name}'." for name in names if not query.get(name)]
    if problems:
        raise CommonError("IncompleteSignature", " ".join(problems) + " Re-examine the query-string parameters.")
    if query["X-Amz-Algorithm"] != ALGORITHM:
        raise CommonError("IncompleteSignature", f"Unsupported AWS 'algorithm': '{query['X-Amz-Algorithm']}'.")
    try:
        expires = int(query.get("X-Amz-Expires", "3600"))
    except ValueError:
        raise CommonError("IncompleteSignature", "X-Amz-Expires must be a number of seconds.") from None
    return _claim(query["X-Amz-Credential"], query["X-Amz-SignedHeaders"], query["X-Amz-Signature"],
                  query["X-Amz-Date"], expires)


def _claim(credential: str, signed_headers: str, signature: str, timestamp: str,
           expires: int | None = None) -> Signature:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise CommonError("IncompleteSignature", "Credential must have exactly 5 slash-delimited elements, "
                                                 f"e.g. keyid/date/region/service/aws4_request, got '{credential}'.")
    access_key, date, region, service, _ = parts
    return Signature(access_key, date, region, service, tuple(signed_headers.lower().split(";")), signature,
                     timestamp, expires)


def _from_http_date(value: str | None) -> str | None:
    try:
        return parsedate_to_datetime(value).astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT) if value else None
    except (TypeError, ValueError):
        return None


def verify(request: HttpRequest, claim: Signature, secret_key: str, now: datetime | None = None) -> None:
    """Raise InvalidSignature unless `claim` is the signature of `request` by `secret_key`, made
    within AWS's 15 minutes of clock skew (or, presigned, not yet expired)."""
    now = now or datetime.now(timezone.utc)
    try:
        signed_at = datetime.strptime(claim.timestamp, TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise CommonError("IncompleteSignature", f"Date must be in ISO-8601 'basic format'. Got '{claim.timestamp}'. "
                                                 "See http://en.wikipedia.org/wiki/ISO_8601") from None
    if claim.date != claim.timestamp[:8]:
        raise CommonError("InvalidSignature", "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                                              f"version of date from HTTP: '{claim.date}' != '{claim.timestamp[:8]}', "
                                              f"from '{claim.timestamp}'.")
    _check_time(signed_at, claim, now)
    expected = recompute(request, claim, secret_key)
    if not hmac.compare_digest(expected, claim.signature):
        raise CommonError("InvalidSignature", MISMATCH)


def _check_time(signed_at: datetime, claim: Signature, now: datetime) -> None:
    stamp = lambda moment: moment.strftime(TIMESTAMP_FORMAT)  # noqa: E731
    if claim.expires is not None:
        if now > signed_at + timedelta(seconds=claim.expires):
            raise CommonError("InvalidSignature", f"Signature expired: {claim.timestamp} + {claim.expires} s "
                                                  f"is now earlier than {stamp(now)}.")
    elif signed_at < now - MAX_SKEW:
        raise CommonError("InvalidSignature", f"Signature expired: {claim.timestamp} is now earlier than "
                                              f"{stamp(now - MAX_SKEW)} ({stamp(now)} - 15 min.)")
    elif signed_at > now + MAX_SKEW:
        raise CommonError("InvalidSignature", f"Signature not yet current: {claim.timestamp} is still later than "
                                              f"{stamp(now + MAX_SKEW)} ({stamp(now)} + 15 min.)")


class _SignedHeadersOnly:
    """botocore's signer, restricted to the headers the client said it signed."""

    def __init__(self, request: HttpRequest, claim: Signature, secret_key: str) -> None:
        super().__init__(Credentials(claim.access_key, secret_key), claim.service, claim.region)
        self._received = request
        self._names = set(claim.signed_headers)

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        signed = HTTPHeaders()
        for name, value in self._received.headers:
            if name in self._names:
                signed[name] = value  # appends: repeated headers are joined with "," by the signer
        return signed


class _Recompute(_SignedHeadersOnly, SigV4Auth):
    pass


class _RecomputeS3(_SignedHeadersOnly, S3SigV4Auth):
    """S3's variant: the path is not encoded twice; the payload hash is the x-amz-content-sha256 header."""


def recompute(request: HttpRequest, claim: Signature, secret_key: str) -> str:
    """The signature `secret_key` gives this request under the claim's scope and signed headers."""
    query = request.query
    if claim.presigned:  # the signature covers every query parameter but itself
        query = "&".join(p for p in query.split("&") if p.partition("=")[0] != "X-Amz-Signature")
    url = f"http://{request.header('host') or 'localhost'}{request.path}" + (f"?{query}" if query else "")
    signable = AWSRequest(method=request.method, url=url, headers=dict(request.headers), data=request.body)
    signable.context["timestamp"] = claim.timestamp
    if claim.presigned and claim.service == "s3":  # presigned S3 URLs sign no payload
        signable.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    signer = (_RecomputeS3 if claim.service == "s3" else _Recompute)(request, claim, secret_key)
    canonical = signer.canonical_request(signable)
    return signer.signature(signer.string_to_sign(signable, canonical), signable)
