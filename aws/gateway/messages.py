"""An HTTP request as the gateway's pure parts (routing, SigV4, protocols) see it, and their answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # as sent, still percent-encoded: signatures cover these exact bytes
    query: str  # as sent, without the "?"
    headers: list[tuple[str, str]]  # names in lower case, repeated names kept
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    @cached_property
    def query_params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))

    @cached_property
    def form(self) -> dict[str, str]:
        """Query-protocol parameters: a url-encoded POST body, or the query string of a GET."""
        content_type = (self.header("content-type") or "").split(";")[0].strip().lower()
        if self.method == "POST" and content_type == "application/x-www-form-urlencoded":
            return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))
        if self.method == "GET":
            return self.query_params
        return {}


@dataclass
class HttpResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
