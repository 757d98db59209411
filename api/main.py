"""The lake's query API. This issue ships its health endpoint; the query endpoints are their own issue."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI(
    title="lakelab query API",
    version="0.1.0",
    description="Query the local data lake (Trino over Hudi and Hive tables) over HTTP.",
)


class Health(BaseModel):
    status: str


@app.get("/health", response_model=Health, summary="Liveness of the API process")
def health() -> Health:
    return Health(status="ok")
