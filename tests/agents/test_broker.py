"""The sweeper and the broker: a run waiting behind a backlog is not a lost run."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult
from kombu import Queue

from agents.broker import broker_task_ids
from agents.models import AgentRun
from agents.services import agent_runs_sweep
from beemanhoney.celery import app as celery_app
from catalog.tasks import embed_rows
from conversations.models import Conversation
from conversations.services import message_post
from tests.agents.shop import small_shop_create
from tests.catalog.factories import ProductFactory
from tests.conversations.factories import ConversationFactory
from tests.support.celery_worker import WorkerProcess, new_queue_name, tasks_sent_to
from tests.support.transactions import saved_meanwhile

pytestmark = pytest.mark.django_db(transaction=True)


def _dispatched_run(queue: str) -> AgentRun:
    """A customer's message whose run is sent to ``queue``, where no worker listens."""
    conversation = ConversationFactory.create()
    message_post(conversation=conversation, author=conversation.owner, content="Any gifts?")
    run = AgentRun.objects.get(conversation=conversation)
    assert run.dispatched_at is not None
    return run


def _purge(queue: str) -> None:
    with celery_app.connection_for_write() as connection:
        Queue(queue)(connection.default_channel).purge()


def test_a_run_still_waiting_in_the_queue_keeps_its_place() -> None:
    queue = new_queue_name("backlog")
    with tasks_sent_to(queue):
        run = _dispatched_run(queue)
        task_id = run.celery_task_id
        try:
            assert task_id in (broker_task_ids() or set())

            report = agent_runs_sweep(now=timezone.now() + timedelta(hours=1))
        finally:
            _purge(queue)

    run.refresh_from_db()
    assert report.redispatched == 0
    assert run.celery_task_id == task_id  # the message in the queue still owns the run


def test_a_run_whose_message_the_broker_lost_is_sent_again() -> None:
    queue = new_queue_name("lost")
    with tasks_sent_to(queue):
        run = _dispatched_run(queue)
        task_id = run.celery_task_id
        _purge(queue)  # as a broker restarted without its data would have
        try:
            report = agent_runs_sweep(now=timezone.now() + timedelta(hours=1))
            run.refresh_from_db()
            assert run.celery_task_id in (broker_task_ids() or set())
        finally:
            _purge(queue)

    assert report.redispatched == 1
    assert run.celery_task_id != task_id


def test_a_run_deleted_while_the_sweep_waits_for_it_is_skipped_and_the_sweep_goes_on() -> None:
    queue = new_queue_name("deleted")
    with tasks_sent_to(queue):
        deleted, lost = _dispatched_run(queue), _dispatched_run(queue)
        _purge(queue)
        task_id = lost.celery_task_id
        try:
            # Its conversation deleted by staff while the sweep locks each stuck run in turn.
            with saved_meanwhile(
                lambda: Conversation.objects.filter(pk=deleted.conversation_id).delete()
            ):
                report = agent_runs_sweep(now=timezone.now() + timedelta(hours=1))
        finally:
            _purge(queue)

    lost.refresh_from_db()
    assert report.redispatched == 1
    assert lost.celery_task_id != task_id
    assert not AgentRun.objects.filter(pk=deleted.pk).exists()


def test_a_customer_s_turn_goes_before_a_backlog_of_embedding_tasks(test_broker_url) -> None:
    small_shop_create()
    products = ProductFactory.create_batch(4)
    queue = new_queue_name("backlog")
    with tasks_sent_to(queue):
        # An import queued its embeddings first, then a customer wrote.
        for _ in range(3):
            embed_rows.delay("products", [product.pk for product in products], True)
        run = _dispatched_run(queue)
        worker = WorkerProcess(broker_url=test_broker_url, queue=queue).start()
        try:
            deadline = time.monotonic() + 60
            while TaskResult.objects.filter(task_name="catalog.embed_rows").count() < 3:
                assert time.monotonic() < deadline, worker.log()[-3000:]
                time.sleep(0.2)
        finally:
            worker.stop()
            _purge(queue)

    run.refresh_from_db()
    embedded_at = TaskResult.objects.filter(task_name="catalog.embed_rows").values_list(
        "date_done", flat=True
    )
    assert run.status == "succeeded"
    assert run.finished_at is not None
    assert run.finished_at < min(embedded_at)
