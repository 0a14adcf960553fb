import gc
import uuid
from datetime import datetime, timedelta

import pytest
from celery.signals import worker_process_init
from django.conf import settings
from django.db import connection
from django_celery_results.models import TaskResult

from beemanhoney.common.tasks import worker_ping


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_task_and_stores_its_result_in_postgres(celery_worker) -> None:
    token = uuid.uuid4().hex

    result = worker_ping.delay(token)

    assert result.get(timeout=30) == token
    stored = TaskResult.objects.get(task_id=result.id)
    assert stored.status == "SUCCESS"
    assert stored.task_name == "common.worker_ping"
    # celery-types' stub of TaskResult lacks its ``worker`` field (the model has had it since
    # django-celery-results' migration 0005).
    assert celery_worker.name in stored.worker  # type: ignore[attr-defined]


def result_writers() -> set[tuple[int, datetime]]:
    """The database sessions, other than this test's, whose last statement stored a result."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND query LIKE %s",
            ["%django_celery_results_taskresult%"],
        )
        return set(cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_its_database_connection_from_one_task_to_the_next(celery_worker) -> None:
    worker_ping.delay("first").get(timeout=30)
    after_one = result_writers()

    for n in range(3):
        worker_ping.delay(str(n)).get(timeout=30)

    later = result_writers()
    # The worker's connection may have reached CONN_MAX_AGE meanwhile (it is as old as the
    # worker): then, and only then, a new one takes its place.
    conn_max_age = settings.DATABASES["default"]["CONN_MAX_AGE"]
    assert conn_max_age is not None  # the settings always give a number of seconds
    max_age = timedelta(seconds=conn_max_age)
    replaced_when_due = [
        new_start - old_start >= max_age
        for _, old_start in after_one
        for _, new_start in later - after_one
    ]
    assert after_one & later or (replaced_when_due and all(replaced_when_due))


def test_a_worker_process_leaves_what_it_loaded_at_start_out_of_full_collections() -> None:
    gc.unfreeze()
    try:
        worker_process_init.send(sender=None)
        frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()

    assert frozen > 0
