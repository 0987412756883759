"""Celery tasks: thin wrappers around verifier.pipeline. Each step is its own idempotent task.

Transient errors (pipeline.TRANSIENT) are retried with backoff; the pipeline keeps the step
re-runnable until the last try (self.request.retries == max_retries), then marks it `error`.
"""
from __future__ import annotations

from celery import chain
from django.utils import timezone

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


@app.task
def requeue_stalled() -> list[int]:
    """Periodic (CELERY_BEAT_SCHEDULE): queue again the releases whose tasks were lost."""
    from django.conf import settings

    from registry.releases import requeue_stalled as requeue

    return requeue(settings.ASSAY_STALLED_AFTER_S)


def enqueue_verification(release_id: int) -> None:
    """Queue every check step and then attest, as one chain; a finished step is not run again."""
    Release.objects.filter(pk=release_id, status__in=[Release.UPLOADED, Release.ERROR, Release.QUEUED]).update(
        status=Release.QUEUED, status_reason="", updated=timezone.now())  # update() does not touch auto_now
    VerificationStep.objects.filter(release_id=release_id, status__in=[VerificationStep.ERROR, VerificationStep.RUNNING]).update(status=VerificationStep.PENDING)
    workflow = chain(*[run_step.si(release_id, name) for name in pipeline.CHECK_STEPS], attest.si(release_id))
    workflow.apply_async()
