"""S3 requests go to the lake's S3 server (SeaweedFS) untouched: same method,
path and query bytes, same headers including Host, body streamed. The signature was made for this
endpoint's Host, and the S3 server verifies it (and applies the user's bucket policies) itself."""

from __future__ import annotations

import logging
from xml.sax.saxutils import escape

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

log = logging.getLogger(__name__)

# Per-connection headers (RFC 9110 7.6.1) and `expect`, which uvicorn already answered
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
              "expect"}
# uvicorn writes its own
OWN_RESPONSE_HEADERS = HOP_BY_HOP | {"date", "server"}


class S3Proxy:
    def __init__(self, upstream: str, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.upstream = httpx.URL(upstream)
        timeout = httpx.Timeout(connect=5.0, read=300.0, write=300.0, pool=30.0)
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, transport=transport)

    async def forward(self, request: Request, body: bytes | None = None) -> Response:
        """Pass `request` on; `body` when it was already read (for routing), else it is streamed."""
        query = request.scope.get("query_string", b"")
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        url = self.upstream.copy_with(raw_path=raw_path + (b"?" + query if query else b""))
        headers = [(k, v) for k, v in request.headers.raw if k.decode("latin-1").lower() not in HOP_BY_HOP]
        has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
        content = body if body is not None else (request.stream() if has_body else b"")
        outgoing = httpx.Request(request.method, url, headers=headers, content=content)
        try:
            upstream = await self._client.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            log.warning("S3 upstream %s: %s", self.upstream, exc)
            return _unavailable(f"The S3 server behind this endpoint ({self.upstream}) did not answer: {exc}")
        response_headers = [(k, v) for k, v in upstream.headers.raw
                            if k.decode("latin-1").lower() not in OWN_RESPONSE_HEADERS]
        response = StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code,
                                     background=BackgroundTask(upstream.aclose))
        response.raw_headers = response_headers  # as received: no content-type or length of our own
        return response

    async def aclose(self) -> None:
        await self._client.aclose()


def _unavailable(message: str) -> Response:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
            f"<Message>{escape(message)}</Message></Error>")
    return Response(body, status_code=503, media_type="application/xml")
