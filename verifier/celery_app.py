"""The Celery application (Redis broker). Run a worker: celery -A verifier.celery_app worker."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")

app = Celery("assay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.broker_connection_retry_on_startup = True
# A task taken by a worker that dies (acks_late) goes back to the queue after this many seconds.
app.conf.broker_transport_options = {"visibility_timeout": int(os.environ.get("ASSAY_BROKER_VISIBILITY_TIMEOUT", "3600"))}
app.autodiscover_tasks(["verifier"], related_name="tasks")
