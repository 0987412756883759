"""Celery tasks: thin wrappers around verifier.pipeline. Each step is its own idempotent task."""
from __future__ import annotations

from . import pipeline
from .celery_app import app

TRANSIENT = (ConnectionError, TimeoutError)


@app.task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=3)
def run_step(release_id: int, step: str) -> None:
    pipeline.execute_step(release_id, step)  # records its own errors on the release


@app.task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=3)
def attest(release_id: int) -> None:
    try:
        pipeline.attest(release_id)
    except Exception as exc:
        pipeline.mark_error(release_id, f"attestation failed: {type(exc).__name__}: {exc}")
        raise
