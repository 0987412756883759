"""Celery task: a thin wrapper around verifier.pipeline.verify_release.

Transient errors (pipeline.TRANSIENT) are retried with backoff; the pipeline keeps the step
re-runnable until the last try, then reports it `error`.
"""
from __future__ import annotations

from . import pipeline
from .celery_app import app
from .registry_api import registered_client

MAX_RETRIES = 3
RETRY = dict(acks_late=True, autoretry_for=pipeline.TRANSIENT, retry_backoff=True, max_retries=MAX_RETRIES)


registry_client = registered_client  # (tests point this at a registry in their own process)


REQUEUE_UNFIT_S = 60


@app.task(bind=True, name="verifier.tasks.verify_release", **RETRY)
def verify_release(self, release_id: int) -> str:
    with registry_client() as client:
        try:
            return pipeline.verify_release(client, release_id, last_attempt=self.request.retries >= self.max_retries)
        except pipeline.DoesNotFit as exc:
            # Back to the same queue for a verifier that can take it; this is not a failure and
            # does not use up the task's retries for transient errors.
            raise self.retry(exc=exc, countdown=REQUEUE_UNFIT_S, max_retries=None) from None


@app.task(bind=True, name="verifier.tasks.second_opinion", **RETRY)
def second_opinion(self, release_id: int) -> str:
    with registry_client() as client:
        return pipeline.second_opinion(client, release_id)
