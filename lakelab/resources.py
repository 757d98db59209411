"""The declared resources file (`resources.yaml`): buckets, topics, databases, users, and the names
each lab works with. The one parser of that file."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, model_validator

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
    """An S3 identity whose IAM policy file (an AWS policy document) says what it may do; its
    keys come from the environment."""

    name: str
    access_key_env: str
    secret_key_env: str
    policy: Path  # relative to the project

    def policy_document(self) -> dict:
        return json.loads((ROOT / self.policy).read_text())

    def buckets(self) -> set[str]:
        """The buckets the policy's statements name."""
        resources = [r for s in self.policy_document()["Statement"] for r in _as_list(s.get("Resource", []))]
        named = {r.removeprefix("arn:aws:s3:::").split("/", 1)[0] for r in resources if r.startswith("arn:aws:s3:::")}
        return named - {"*"}

    def keys(self) -> tuple[str, str]:
        env = environment()
        missing = [n for n in (self.access_key_env, self.secret_key_env) if not env.get(n)]
        if missing:
            raise KeyError(f"user {self.name}: set {', '.join(missing)} (see .env.sample)")
        return env[self.access_key_env], env[self.secret_key_env]


class LabA(BaseModel):
    topic: str
    dead_letter_topic: str
    database: str
    table: str
    bucket: str

    @property
    def location(self) -> str:
        return f"s3a://{self.bucket}/{self.table}"


class LabB(BaseModel):
    topic: str
    alerts_topic: str
    bucket: str
    raw_zone: str
    processed_zone: str
    dataset: str
    database: str
    raw_table: str
    processed_table: str

    @property
    def raw_prefix(self) -> str:
        """Where the Firehose delivers the trades."""
        return f"{self.raw_zone}{self.dataset}/"


class LabC(BaseModel):
    raw_bucket: str
    processed_bucket: str
    dataset: str
    database: str
    table: str
    source_database: str
    stream_topic: str
    stream_prefix: str
    stream_table: str

    @property
    def qualified_table(self) -> str:
        return f"{self.database}.{self.table}"

    @property
    def location(self) -> str:
        return f"s3a://{self.processed_bucket}/{self.dataset}"


class LabD(BaseModel):
    source_database: str
    source_tables: list[str]
    connector: str
    topic_prefix: str
    dead_letter_topic: str
    database: str


class Labs(BaseModel):
    lab_a: LabA
    lab_b: LabB
    lab_c: LabC
    lab_d: LabD


class Resources(BaseModel):
    buckets: list[Bucket]
    topics: list[Topic]
    postgres_databases: list[str]
    metastore_databases: list[MetastoreDatabase]
    users: list[User] = Field(default_factory=list)
    labs: Labs

    def user(self, name: str) -> User:
        for user in self.users:
            if user.name == name:
                return user
        raise KeyError(f"unknown user {name!r}; declared: {', '.join(u.name for u in self.users)}")

    def metastore_database(self, name: str) -> MetastoreDatabase:
        return next(d for d in self.metastore_databases if d.name == name)

    @model_validator(mode="after")
    def _labs_use_declared_names(self) -> Resources:
        declared = {
            "bucket": {b.name for b in self.buckets},
            "topic": {t.name for t in self.topics},
            "postgres database": set(self.postgres_databases),
            "metastore database": {d.name for d in self.metastore_databases},
        }
        uses = {
            "bucket": [self.labs.lab_a.bucket, self.labs.lab_b.bucket, self.labs.lab_c.raw_bucket,
                       self.labs.lab_c.processed_bucket, *(b for u in self.users for b in sorted(u.buckets()))],
            "topic": [self.labs.lab_a.topic, self.labs.lab_a.dead_letter_topic, self.labs.lab_b.topic,
                      self.labs.lab_b.alerts_topic, self.labs.lab_c.stream_topic, self.labs.lab_d.dead_letter_topic],
            "postgres database": [self.labs.lab_c.source_database, self.labs.lab_d.source_database],
            "metastore database": [self.labs.lab_a.database, self.labs.lab_b.database, self.labs.lab_c.database,
                                   self.labs.lab_d.database],
        }
        undeclared = [f"{kind} {name!r}" for kind, names in uses.items() for name in names if name not in declared[kind]]
        if undeclared:
            raise ValueError(f"used but not declared: {', '.join(undeclared)}")
        return self


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def load_resources(path: Path = ROOT / "resources.yaml") -> Resources:
    return Resources.model_validate(yaml.safe_load(path.read_text()))


@cache
def resources() -> Resources:
    """The project's resources.yaml, parsed once per process."""
    return load_resources()

