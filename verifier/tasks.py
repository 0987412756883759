"""Celery tasks: thin wrappers around verifier.pipeline. Each step is its own idempotent task.

Transient errors (pipeline.TRANSIENT) are retried with backoff; the pipeline keeps the step
re-runnable until the last try (self.request.retries == max_retries), then marks it `error`.
"""
from __future__ import annotations

from . import pipeline
from .celery_app import app

MAX_RETRIES = 3
RETRY = dict(acks_late=True, autoretry_for=pipeline.TRANSIENT, retry_backoff=True, max_retries=MAX_RETRIES)


@app.task(bind=True, **RETRY)
def run_step(self, release_id: int, step: str) -> None:
    pipeline.execute_step(release_id, step, last_attempt=self.request.retries >= self.max_retries)


@app.task(bind=True, **RETRY)
def attest(self, release_id: int) -> None:
    pipeline.run_attest(release_id, last_attempt=self.request.retries >= self.max_retries)


@app.task
def requeue_stalled() -> list[int]:
    """Periodic (CELERY_BEAT_SCHEDULE): queue again the releases whose tasks were lost."""
    from django.conf import settings

    from registry.releases import requeue_stalled as requeue

    return requeue(settings.ASSAY_STALLED_AFTER_S)


@app.task
def collect_garbage() -> dict:
    """Periodic (CELERY_BEAT_SCHEDULE): abort old unfinished uploads, delete unused old blobs."""
    from registry.quotas import collect_garbage as collect

    done = collect()
    return {"uploads": len(done.uploads), "blobs": len(done.blobs), "bytes_freed": done.bytes_freed}
