"""The verifier's Celery worker: celery -A verifier.celery_app worker [-B].

The app itself (broker, visibility timeout, periodic tasks: all Django settings) is
registry/queueing.py, the one the registry sends tasks with; the worker adds the task
implementations (verifier/tasks.py).
"""
from registry.queueing import app

app.autodiscover_tasks(["verifier"], related_name="tasks")

__all__ = ["app"]
