import gc
import uuid

import pytest
from django_celery_results.models import TaskResult

from beemanhoney.celery import _warm_worker_process
from beemanhoney.common.tasks import worker_ping


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_task_and_stores_its_result_in_postgres(celery_worker) -> None:
    token = uuid.uuid4().hex

    result = worker_ping.delay(token)

    assert result.get(timeout=30) == token
    stored = TaskResult.objects.get(task_id=result.id)
    assert stored.status == "SUCCESS"
    assert stored.task_name == "common.worker_ping"
    assert celery_worker.name in stored.worker


def test_a_worker_process_leaves_what_it_loaded_at_start_out_of_full_collections() -> None:
    gc.unfreeze()

    _warm_worker_process()

    assert gc.get_freeze_count() > 0
