"""Celery tasks: thin wrappers around verifier.pipeline. Each step is its own idempotent task.

Transient errors (pipeline.TRANSIENT) are retried with backoff; the pipeline keeps the step
re-runnable until the last try (self.request.retries == max_retries), then marks it `error`.
"""
from __future__ import annotations

from celery import chain

from registry.models import Release, VerificationStep

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


def enqueue_verification(release_id: int) -> None:
    """Queue every check step and then attest, as one chain; a finished step is not run again."""
    Release.objects.filter(pk=release_id, status__in=[Release.UPLOADED, Release.ERROR, Release.QUEUED]).update(status=Release.QUEUED, status_reason="")
    VerificationStep.objects.filter(release_id=release_id, status__in=[VerificationStep.ERROR, VerificationStep.RUNNING]).update(status=VerificationStep.PENDING)
    workflow = chain(*[run_step.si(release_id, name) for name in pipeline.CHECK_STEPS], attest.si(release_id))
    workflow.apply_async()
