"""The verifier's Celery worker: celery -A verifier.celery_app worker

A separate service: it needs the broker (Redis), its own folder (ASSAY_VERIFIER_DIR: key and
registration) and the registry's URL, and no database and no Django. It takes the tasks the
registry sends by name (registry/queueing.py) from the shared queue and from its own (named after
the verifier: jobs meant for it alone), with the same broker settings (assay/core/queueconfig.py).
"""
from celery import Celery
from celery.signals import worker_ready
from kombu import Exchange, Queue

from assay.core import queueconfig
from assay.core.errors import AssayError
from assay.toolchain.quantize import build_id_only

from .identity import load_registration

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
    # No remote control: whoever can write to the broker could otherwise shut the verifier down,
    # or change its queues and rate limits, with one broadcast (it is stopped by its signals).
    worker_enable_remote_control=False,
)
def _queue(name: str) -> Queue:
    """A queue bound by its own name only, as the registry sends to it (send_task(queue=name)):
    binding several queues to one key would hand each message to all of them."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


try:  # besides the shared queue, the one for jobs meant for this verifier alone (second opinions)
    _own = [_queue(f"{queueconfig.verify_queue()}.{load_registration().name}")]
except AssayError:
    _own = []  # not registered yet: the worker's tasks will say so
# ...and the one for rebuilds on this machine's llama.cpp build (capability routing)
app.conf.task_queues = [_queue(queueconfig.verify_queue()), *_own, _queue(queueconfig.build_queue(build_id_only()))]


@worker_ready.connect
def _advertise(**_):
    """Tell the registry what this verifier can run (its build, CPU, GPU, RAM) as it starts, so
    jobs it can take stop waiting; the same goes with every job it claims."""
    import logging

    from .pipeline import capabilities
    from .registry_api import registered_client

    try:
        with registered_client() as client:
            client.post_json("/api/v1/verifier/me", {"capabilities": capabilities()})
    except (AssayError, ConnectionError) as exc:
        logging.getLogger(__name__).warning("could not advertise this verifier's capabilities: %s", exc)
app.autodiscover_tasks(["verifier"], related_name="tasks", force=True)

__all__ = ["app"]
