"""The declared resources file (`resources.yaml`): buckets, topics, databases, users."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from lakelab.settings import ROOT, environment


class Bucket(BaseModel):
    name: str
    versioning: bool = False
    prefixes: list[str] = Field(default_factory=list)


class Topic(BaseModel):
    name: str
    partitions: int = 1


class MetastoreDatabase(BaseModel):
    name: str
    location: str | None = None


class User(BaseModel):
    """An S3 identity limited to some buckets; its keys come from the environment."""

    name: str
    access_key_env: str
    secret_key_env: str
    read: list[str] = Field(default_factory=list)
    write: list[str] = Field(default_factory=list)

    def keys(self) -> tuple[str, str]:
        env = environment()
        missing = [n for n in (self.access_key_env, self.secret_key_env) if not env.get(n)]
        if missing:
            raise KeyError(f"user {self.name}: set {', '.join(missing)} (see .env.sample)")
        return env[self.access_key_env], env[self.secret_key_env]


class Resources(BaseModel):
    buckets: list[Bucket]
    topics: list[Topic]
    postgres_databases: list[str]
    metastore_databases: list[MetastoreDatabase]
    users: list[User] = Field(default_factory=list)


def load_resources(path: Path = ROOT / "resources.yaml") -> Resources:
    return Resources.model_validate(yaml.safe_load(path.read_text()))
