"""AWS-shaped errors. Providers raise them; the protocol layer turns them into AWS's error bodies."""

from __future__ import annotations


class AwsError(Exception):
    """An error a client sees with AWS's code. `status` None means: the status the service model
    gives that error shape, else 400."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def wire(self, protocol: str) -> tuple[str, int | None]:
        """The code and status this error has on the wire of `protocol` ("json" or "query")."""
        return self.code, self.status


# Errors any service may answer, spelled per protocol family as AWS does: JSON services
# (Kinesis, Glue, ...) use "...Exception" codes with 400; query services (STS) use the common
# error names, mostly with 403.
_COMMON: dict[str, tuple[tuple[str, int], tuple[str, int]]] = {
    "MissingAuthenticationToken": (("MissingAuthenticationTokenException", 400), ("MissingAuthenticationToken", 403)),
    "IncompleteSignature": (("IncompleteSignatureException", 400), ("IncompleteSignature", 400)),
    "UnrecognizedClient": (("UnrecognizedClientException", 400), ("InvalidClientTokenId", 403)),
    "InvalidSignature": (("InvalidSignatureException", 400), ("SignatureDoesNotMatch", 403)),
    "AccessDenied": (("AccessDeniedException", 400), ("AccessDenied", 403)),
    "Validation": (("ValidationException", 400), ("ValidationError", 400)),
    "Serialization": (("SerializationException", 400), ("MalformedInput", 400)),
    "UnknownOperation": (("UnknownOperationException", 400), ("InvalidAction", 400)),
    "NotImplemented": (("NotImplemented", 501), ("NotImplemented", 501)),
    "ServiceUnavailable": (("ServiceUnavailable", 503), ("ServiceUnavailable", 503)),
    "InternalFailure": (("InternalFailure", 500), ("InternalFailure", 500)),
}


class CommonError(AwsError):
    """One of the errors every service shares, e.g. `CommonError("InvalidSignature", "...")`."""

    def __init__(self, kind: str, message: str) -> None:
        if kind not in _COMMON:
            raise ValueError(f"unknown common error {kind!r}")
        super().__init__(kind, message)

    def wire(self, protocol: str) -> tuple[str, int | None]:
        json_form, query_form = _COMMON[self.code]
        return query_form if protocol == "query" else json_form
