"""The verifier's Celery worker: celery -A verifier.celery_app worker

A separate service: it needs the broker (Redis), its own folder (ASSAY_VERIFIER_DIR: key and
registration) and the registry's URL, and no database and no Django. It takes the tasks the
registry sends by name (registry/queueing.py) from the same queue, with the same broker settings
(assay/queueconfig.py).
"""
from celery import Celery

from assay import queueconfig

app = Celery("assay-verifier")
app.conf.update(
    broker_url=queueconfig.broker_url(),
    broker_connection_retry_on_startup=True,
    broker_transport_options={"visibility_timeout": queueconfig.visibility_timeout_s()},
    task_default_queue=queueconfig.verify_queue(),
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    result_backend=None,
    worker_hijack_root_logger=True,
)
app.autodiscover_tasks(["verifier"], related_name="tasks", force=True)

__all__ = ["app"]
