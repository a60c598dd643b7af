"""HTTP entry point for ${{ values.name }}."""

from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from pydantic import BaseModel

SERVICE_NAME = "${{ values.name }}"

try:
    SERVICE_VERSION = version(SERVICE_NAME)
except PackageNotFoundError:  # running from a source checkout without installing
    SERVICE_VERSION = "0.0.0"

app = FastAPI(title=SERVICE_NAME, version=SERVICE_VERSION)


class Info(BaseModel):
    name: str
    version: str


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process is up and serving requests."""
    return {"status": "ok"}


@app.get("/readyz")
def readyz() -> dict[str, str]:
    """Readiness: extend this with checks for the databases and APIs the service needs."""
    return {"status": "ready"}


@app.get("/v1/info", response_model=Info)
def info() -> Info:
    """Name and version of the running build."""
    return Info(name=SERVICE_NAME, version=SERVICE_VERSION)
