"""uvicorn's HTTP/1.1 protocol (h11), answering requests it cannot even parse (a bad request line
or HTTP version, bytes not allowed in a URL, an invalid Content-Length) with the API's JSON error
shape instead of uvicorn's text/plain. Chosen with `uvicorn --http api.server:JsonErrorsProtocol`."""

from __future__ import annotations

import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

_BODY = json.dumps({"error": "bad_request", "message": "the API could not parse this HTTP request"}).encode()


class JsonErrorsProtocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                      h11.Data(data=_BODY), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()
