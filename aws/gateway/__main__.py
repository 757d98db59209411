"""`python -m aws.gateway --host HOST --port PORT`: serve the endpoint (services/aws/service.py
starts it on settings.aws_endpoint_url; a container passes its own interface)."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from aws.gateway.app import create_app
from lakelab.settings import get_settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m aws.gateway")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(get_settings()), host=args.host, port=args.port, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
