"""The registry's periodic tasks (Celery beat, in the registry's maintenance worker: it has the
database, verifiers have not). Thin: the work is in registry/releases.py, registry/verification.py
and registry/quotas.py."""
from __future__ import annotations

from .queueing import app


@app.task(name="registry.tasks.requeue_stalled")
def requeue_stalled() -> list[int]:
    """Queue again the releases whose tasks were lost."""
    from django.conf import settings

    from .releases import requeue_stalled as requeue

    return requeue(settings.ASSAY_STALLED_AFTER_S)


@app.task(name="registry.tasks.ask_second_opinions")
def ask_second_opinions() -> dict:
    """Ask another verifier where a second opinion was not answered in time, or its verifier was revoked."""
    from .verification import refresh_second_opinions

    return refresh_second_opinions()


@app.task(name="registry.tasks.collect_garbage")
def collect_garbage() -> dict:
    """Abort old unfinished uploads, delete unused old blobs."""
    from .quotas import collect_garbage as collect

    done = collect()
    return {"uploads": len(done.uploads), "blobs": len(done.blobs), "bytes_freed": done.bytes_freed}
