"""The Celery application (Redis broker). Run a worker: celery -A verifier.celery_app worker."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")

app = Celery("assay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.broker_connection_retry_on_startup = True
# The visibility timeout (fitted to the longest step) and the periodic requeue of stalled
# releases are Django settings: CELERY_BROKER_TRANSPORT_OPTIONS, CELERY_BEAT_SCHEDULE.
app.autodiscover_tasks(["verifier"], related_name="tasks")
