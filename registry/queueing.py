"""The Celery application (Redis broker) and the one way the registry queues a verification.

The registry sends the verification tasks by name and imports nothing of the verifier: a
verifier is a separate service that registers the tasks on this same app
(verifier/celery_app.py, verifier/tasks.py): one task per release, which claims the release's
job, runs each check step and posts the signed verdict through the verifier API.
"""
from __future__ import annotations

import os

from celery import Celery
from django.utils import timezone

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")

app = Celery("assay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.broker_connection_retry_on_startup = True


VERIFY_TASK = "verifier.tasks.verify_release"
SECOND_OPINION_TASK = "verifier.tasks.second_opinion"


def verifier_queue(name: str) -> str:
    """The queue only the verifier `name` takes (besides the shared one): jobs for it alone."""
    from django.conf import settings

    return f"{settings.CELERY_TASK_DEFAULT_QUEUE}.{name}"


def enqueue_second_opinion(release_id: int, verifier_name: str) -> None:
    app.send_task(SECOND_OPINION_TASK, args=(release_id,), queue=verifier_queue(verifier_name))


def enqueue_verification(release_id: int) -> None:
    """Queue a release's verification; a finished step is not run again. Any verifier that can
    take it may (registry/routing.py): the job is released from the verifier that held it (one
    that died, or one that failed). When none can yet, the release says what it waits for."""
    from .models import Release, VerificationStep

    from .routing import route
    from .status_reason import with_standing_reason

    release = Release.objects.select_related("blob").get(pk=release_id)
    queue, waiting = route(release)
    Release.objects.filter(pk=release_id, status__in=[Release.UPLOADED, Release.ERROR, Release.QUEUED]).update(
        status=Release.QUEUED, status_reason=with_standing_reason(release.status_reason, waiting), verifier=None,
        updated=timezone.now())  # update() does not touch auto_now
    VerificationStep.objects.filter(release_id=release_id, status__in=[VerificationStep.ERROR, VerificationStep.RUNNING]).update(
        status=VerificationStep.PENDING)
    app.send_task(VERIFY_TASK, args=(release_id,), queue=queue)


app.autodiscover_tasks(["registry"], related_name="tasks")
