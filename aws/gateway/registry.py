"""The services the endpoint serves, each a provider imported on its first request.

A new service plugs in with one line here, "<botocore service name>": "<module>:<class>", and a
`Provider` subclass in that module; botocore's model of the service does the rest (routing, wire
protocol, validation). S3 is not here: it is passed through (`aws.s3.proxy`). Tests may give a
provider class instead of its "module:class" name.
"""

from __future__ import annotations

import importlib
import threading

from aws.gateway.provider import Provider
from lakelab.settings import Settings

PROVIDERS: dict[str, str] = {
    "athena": "aws.athena.provider:AthenaProvider",
    "firehose": "aws.firehose.provider:FirehoseProvider",
    "glue": "aws.glue.provider:GlueProvider",
    "kinesis": "aws.kinesis.provider:KinesisProvider",
    "sts": "aws.sts.provider:StsProvider",
}


class Registry:
    def __init__(self, settings: Settings, specs: dict[str, str | type[Provider]] | None = None) -> None:
        self._settings = settings
        self._specs = dict(PROVIDERS if specs is None else specs)
        self._loaded: dict[str, Provider] = {}
        self._lock = threading.Lock()

    @property
    def services(self) -> list[str]:
        return list(self._specs)

    def _provider_class(self, service: str) -> type[Provider]:
        spec = self._specs[service]
        if isinstance(spec, str):
            module_name, _, class_name = spec.partition(":")
            spec = getattr(importlib.import_module(module_name), class_name)
        return spec

    def loaded(self, service: str) -> Provider | None:
        """The service's provider if it is made already (no import, no lock to wait for)."""
        return self._loaded.get(service)

    def provider(self, service: str) -> Provider:
        with self._lock:
            if service not in self._loaded:
                self._loaded[service] = self._provider_class(service)(self._settings)
            return self._loaded[service]

    def start(self) -> None:
        """Load the providers that resume work of their own when the endpoint starts (Firehose's
        deliveries) instead of on their first request. Athena and Glue load on their first
        request, and mark then what a stopped endpoint left unfinished."""
        for service in self._specs:
            if self._provider_class(service).resumes_work_at_start:
                self.provider(service)

    def close(self) -> None:
        with self._lock:
            for provider in self._loaded.values():
                provider.close()
            self._loaded.clear()
