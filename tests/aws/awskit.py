"""Helpers of the AWS endpoint's integration tests: real boto3 clients and the real AWS CLI,
pointed at the running endpoint as course code is (AWS_ENDPOINT_URL)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import boto3
from botocore.config import Config

from lakelab.resources import resources
from lakelab.settings import Settings

T = TypeVar("T")


def admin_keys(settings: Settings) -> tuple[str, str]:
    return settings.s3_access_key, settings.s3_secret_key.get_secret_value()


def user_keys(name: str) -> tuple[str, str]:
    return resources().user(name).keys()


def client(settings: Settings, service: str, keys: tuple[str, str] | None = None, **config):
    """A boto3 client of the endpoint that does not retry, so a test sees the first answer."""
    access, secret = keys or admin_keys(settings)
    return boto3.client(service, endpoint_url=settings.aws_endpoint_url, region_name=settings.s3_region,
                        aws_access_key_id=access, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}, read_timeout=60, **config))


def course_env(settings: Settings, keys: tuple[str, str] | None = None) -> dict[str, str]:
    """The whole environment course code gets: the endpoint, the credentials, a region, no config
    files; nothing of lakelab's."""
    access, secret = keys or admin_keys(settings)
    return {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
            "AWS_ENDPOINT_URL": settings.aws_endpoint_url, "AWS_ACCESS_KEY_ID": access,
            "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": settings.s3_region,
            "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}


def aws_cli(settings: Settings, *args: str, keys: tuple[str, str] | None = None) -> subprocess.CompletedProcess:
    """`aws ARGS --output json` (PyPI awscli) with AWS_ENDPOINT_URL and nothing else configured."""
    env = {**course_env(settings, keys), "AWS_MAX_ATTEMPTS": "1"}
    return subprocess.run([str(Path(sys.executable).parent / "aws"), *args, "--output", "json"], env=env,
                          capture_output=True, text=True, timeout=120)


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 60, every_s: float = 0.5) -> T:
    """The first truthy answer of `probe`, or AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = probe()
        if answer:
            return answer
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.0f} s"
        time.sleep(every_s)
