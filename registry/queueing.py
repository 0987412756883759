"""The Celery application (Redis broker) and the one way the registry queues a verification.

The registry sends the verification tasks by name and imports nothing of the verifier: a
verifier is a separate service that registers the tasks on this same app
(verifier/celery_app.py, verifier/tasks.py). Each check step is its own task, then attest.
"""
from __future__ import annotations

import os

from celery import Celery, chain
from django.utils import timezone

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")

app = Celery("assay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.broker_connection_retry_on_startup = True


def enqueue_verification(release_id: int) -> None:
    """Queue every check step and then attest, as one chain; a finished step is not run again."""
    from .models import Release, VerificationStep

    Release.objects.filter(pk=release_id, status__in=[Release.UPLOADED, Release.ERROR, Release.QUEUED]).update(
        status=Release.QUEUED, status_reason="", updated=timezone.now())  # update() does not touch auto_now
    VerificationStep.objects.filter(release_id=release_id, status__in=[VerificationStep.ERROR, VerificationStep.RUNNING]).update(
        status=VerificationStep.PENDING)
    steps = [app.signature("verifier.tasks.run_step", args=(release_id, name), immutable=True) for name in VerificationStep.CHECKS]
    chain(*steps, app.signature("verifier.tasks.attest", args=(release_id,), immutable=True)).apply_async()
