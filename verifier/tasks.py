"""Celery task: a thin wrapper around verifier.pipeline.verify_release.

Transient errors (pipeline.TRANSIENT) are retried with backoff; the pipeline keeps the step
re-runnable until the last try, then reports it `error`.
"""
from __future__ import annotations

from . import pipeline
from .celery_app import app
from .identity import load_registration
from .registry_api import VerifierClient

MAX_RETRIES = 3
RETRY = dict(acks_late=True, autoretry_for=pipeline.TRANSIENT, retry_backoff=True, max_retries=MAX_RETRIES)


def registry_client() -> VerifierClient:
    registration = load_registration()
    return VerifierClient(registration.registry, registration.token)


@app.task(bind=True, name="verifier.tasks.verify_release", **RETRY)
def verify_release(self, release_id: int) -> str:
    with registry_client() as client:
        return pipeline.verify_release(client, release_id, last_attempt=self.request.retries >= self.max_retries)


@app.task(bind=True, name="verifier.tasks.second_opinion", **RETRY)
def second_opinion(self, release_id: int) -> str:
    with registry_client() as client:
        return pipeline.second_opinion(client, release_id)
