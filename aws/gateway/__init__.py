"""The endpoint core: routing, SigV4, the wire protocols (from botocore's models), the provider registry."""
