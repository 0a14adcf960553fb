import gc
import logging
import os
import sys
from pathlib import Path

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun, worker_process_init
from django.db import close_old_connections

from beemanhoney.startup import settings_loaded_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beemanhoney.settings")


# Under the ``celery`` command (worker, beat): in any other process the settings load with Django.
if Path(sys.argv[0]).name == "celery":
    settings_loaded_or_exit()

app = Celery("beemanhoney")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Tasks no customer waits for (settings.BACKGROUND_QUEUE_SUFFIX).
BACKGROUND_TASKS = frozenset({"catalog.embed_rows", "catalog.repair_stale_embeddings"})


def route_background_tasks(name: str, *args: object, **kwargs: object) -> dict[str, str] | None:
    """The background queue beside the default queue, as the default is when a task is sent
    (the tests send to queues of their own)."""
    from django.conf import settings

    if name not in BACKGROUND_TASKS:
        return None
    return {"queue": app.conf.task_default_queue + settings.BACKGROUND_QUEUE_SUFFIX}


@worker_process_init.connect
def _warm_worker_process(**kwargs: object) -> None:
    """Load the embedding model when a worker process starts, not on its first customer."""
    from agents.providers.router import warm_up
    from catalog.spelling import english_words

    try:
        warm_up()
        english_words()
    except Exception:
        # A cold start is slower, not broken: the first task loads what it needs.
        logging.getLogger(__name__).warning("worker.warm_up_failed", exc_info=True)
    # The ~560k objects loaded so far (Django, torch, the model, the graph) live as long as the
    # process: leave them out of the collector's full passes, which otherwise stall a turn for
    # ~0.3 s (as beemanhoney.wsgi does for gunicorn workers).
    gc.freeze()


def retry_wait_longest() -> int:
    """The longest a task's retry may wait: a task held by a worker until its countdown ends is
    redelivered to another once the broker's visibility timeout passes, so the wait and the run
    must both fit inside it."""
    from django.conf import settings

    return max(1, settings.CELERY_VISIBILITY_TIMEOUT - settings.CELERY_TASK_TIME_LIMIT)


def task_connections_close_old(task: Task) -> None:
    """Close the task's database connections that broke or outlived ``CONN_MAX_AGE``, as
    Django does around each request. A task run eagerly (``apply()``) runs inside its caller's
    connection and transaction: left alone."""
    if not getattr(task.request, "is_eager", False):
        close_old_connections()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(sender: Task, **kwargs: object) -> None:
    """Keep a task's database connection for the next one unless it broke or aged
    (``CELERY_DB_REUSE_MAX``)."""
    task_connections_close_old(sender)
