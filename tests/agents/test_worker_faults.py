"""Faults survived with real worker processes: a worker killed mid-turn loses nothing."""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from agents.graph.prompts import HANDOFF_REPLY
from agents.models import AgentRun
from agents.pricing import model_cost_usd
from agents.services import agent_run_execute, agent_runs_sweep
from conversations.models import STAFF_TAKE_OVER_REASON, Message
from tests.agents.factories import AgentRunFactory
from tests.agents.shop import small_shop_create
from tests.conversations.factories import ConversationFactory
from tests.support.celery_worker import (
    WorkerProcess,
    new_queue_name,
    openai_worker_env,
    tasks_sent_to,
)
from tests.support.fake_openai import ChatText, ChatToolCalls, FakeOpenAIServer, Hang

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_until(condition, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def _openai_worker(server: FakeOpenAIServer, broker_url: str, queue: str) -> WorkerProcess:
    return WorkerProcess(
        broker_url=broker_url,
        queue=queue,
        extra_env=openai_worker_env(server.base_url, OPENAI_TIMEOUT_SECONDS="20"),
    )


def test_a_worker_killed_mid_turn_loses_no_turn_and_doubles_no_reply(test_broker_url) -> None:
    small_shop_create()
    queue = new_queue_name("kill")
    conversations = ConversationFactory.create_batch(3)
    with FakeOpenAIServer() as server, tasks_sent_to(queue):
        server.default = Hang(30)
        doomed = _openai_worker(server, test_broker_url, queue).start()
        for conversation in conversations:
            client = APIClient()
            client.force_authenticate(conversation.owner)
            client.post(f"/api/conversations/{conversation.id}/messages/", {"content": "Gifts?"})
        assert _wait_until(lambda: AgentRun.objects.filter(status="running").exists())
        assert _wait_until(lambda: len(server.chat_requests()) >= 1)

        doomed.kill()
        server.default = ChatText("Our Manuka Honey UMF 15+ 250g is £44.95.")
        rescuer = _openai_worker(server, test_broker_url, queue).start()
        try:
            report = agent_runs_sweep(now=timezone.now() + timedelta(hours=1))
            finished = _wait_until(
                lambda: AgentRun.objects.exclude(status__in=["succeeded", "failed"]).count() == 0
            )
        finally:
            rescuer.stop()

    assert finished, rescuer.log()[-3000:]
    assert report.redispatched >= 1
    assert AgentRun.objects.filter(status="succeeded").count() == 3
    for user_message in Message.objects.filter(role="user"):
        assert Message.objects.filter(run__user_message=user_message, role="assistant").count() == 1
    assert AgentRun.objects.filter(deliveries=2).count() == 1


def test_a_worker_killed_mid_turn_leaves_what_its_model_calls_spent_on_the_run(
    test_broker_url,
) -> None:
    # The provider bills the calls a turn made before its worker died: counted only when the
    # turn ended, they were lost with it, and the budgets never saw them.
    queue = new_queue_name("kill-usage")
    conversation = ConversationFactory.create()
    with FakeOpenAIServer() as server, tasks_sent_to(queue):
        route = ChatToolCalls(
            [("route_conversation", {"route": "sales"})], prompt_tokens=50, completion_tokens=5
        )
        server.script_chat(route)
        server.default = Hang(30)
        doomed = _openai_worker(server, test_broker_url, queue).start()
        client = APIClient()
        client.force_authenticate(conversation.owner)
        client.post(f"/api/conversations/{conversation.id}/messages/", {"content": "Gifts?"})
        # Routed, then hung on the answer's call.
        assert _wait_until(lambda: len(server.chat_requests()) >= 2), doomed.log()[-3000:]
        doomed.kill()

    run = AgentRun.objects.get(conversation=conversation)
    assert run.status == AgentRun.Status.RUNNING
    assert (run.prompt_tokens, run.completion_tokens, run.model_calls) == (50, 5, 1)
    priced = model_cost_usd(model=settings.OPENAI_CHAT_MODEL, prompt_tokens=50, completion_tokens=5)
    assert priced > 0
    assert run.cost_usd == priced


def _other_sessions_terminated() -> int:
    """End every other session of the test database, as a restart or failover of the database
    ends them (the worker's, here); how many."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_a_turn_whose_database_session_ends_is_answered_on_a_retry_within_seconds(
    test_broker_url,
) -> None:
    small_shop_create()
    queue = new_queue_name("dbgone")
    conversation = ConversationFactory.create()
    with FakeOpenAIServer() as server, tasks_sent_to(queue):
        server.default = Hang(2)
        worker = WorkerProcess(
            broker_url=test_broker_url,
            queue=queue,
            extra_env=openai_worker_env(server.base_url, AGENT_RUN_DATABASE_RETRY_SECONDS="0.5"),
        ).start()
        try:
            client = APIClient()
            client.force_authenticate(conversation.owner)
            client.post(f"/api/conversations/{conversation.id}/messages/", {"content": "Gifts?"})
            assert _wait_until(lambda: len(server.chat_requests()) >= 1)
            assert _other_sessions_terminated() >= 1
            server.default = ChatText("Our Manuka Honey UMF 15+ 250g is £44.95.")
            # Well within the sweeper's wait (the hard time limit and its grace, 180 s).
            answered = _wait_until(
                lambda: AgentRun.objects.filter(status="succeeded").exists(), timeout=30
            )
        finally:
            worker.stop()

    assert answered, worker.log()[-3000:]
    run = AgentRun.objects.get()
    assert run.deliveries == 2
    replies = Message.objects.filter(role="assistant")
    assert [reply.content for reply in replies] == ["Our Manuka Honey UMF 15+ 250g is £44.95."]


def test_a_run_that_keeps_killing_its_worker_is_failed_after_three_deliveries() -> None:
    conversation = ConversationFactory.create()
    run = AgentRunFactory.create(
        conversation=conversation, status=AgentRun.Status.RUNNING, deliveries=3
    )

    report = agent_runs_sweep(now=timezone.now() + timedelta(hours=1))

    run.refresh_from_db()
    assert report.failed == 1
    assert run.status == AgentRun.Status.FAILED
    assert "3 deliveries" in run.error
    apology = conversation.messages.get(role="assistant")
    assert apology.run == run


def _cancelled_mid_turn_with_one_queued_behind() -> tuple[AgentRun, AgentRun]:
    """A run cancelled while its worker ran it (the worker then died), and the next message's
    run waiting behind it."""
    conversation = ConversationFactory.create()
    cancelled = AgentRunFactory.create(
        conversation=conversation,
        status=AgentRun.Status.CANCELLED,
        started_at=timezone.now(),
        deliveries=1,
        celery_task_id="task-of-the-lost-worker",
    )
    waiting = AgentRunFactory.create(conversation=conversation)
    return cancelled, waiting


def test_the_sweeper_closes_a_run_cancelled_mid_turn_whose_worker_died() -> None:
    cancelled, waiting = _cancelled_mid_turn_with_one_queued_behind()

    with tasks_sent_to(new_queue_name("cancelled")):
        report = agent_runs_sweep(now=timezone.now() + timedelta(hours=1))

    cancelled.refresh_from_db()
    waiting.refresh_from_db()
    assert report.closed == 1
    assert (cancelled.status, cancelled.finished_at is not None) == ("cancelled", True)
    assert waiting.dispatched_at is not None


def test_a_redelivered_run_cancelled_mid_turn_is_closed_not_left_in_flight() -> None:
    cancelled, waiting = _cancelled_mid_turn_with_one_queued_behind()

    with tasks_sent_to(new_queue_name("cancelled")):
        outcome = agent_run_execute(run_id=str(cancelled.pk), task_id="task-of-the-lost-worker")

    cancelled.refresh_from_db()
    waiting.refresh_from_db()
    assert outcome is None
    assert cancelled.finished_at is not None
    assert not cancelled.conversation.messages.filter(role="assistant").exists()
    assert waiting.dispatched_at is not None


def _run_whose_lost_delivery_handed_off(*, reason: str) -> AgentRun:
    """A run whose worker died after its turn handed the conversation to staff, before the
    run stored the reply saying so."""
    conversation = ConversationFactory.create()
    started = timezone.now() - timedelta(seconds=30)
    run = AgentRunFactory.create(
        conversation=conversation,
        status=AgentRun.Status.RUNNING,
        started_at=started,
        deliveries=1,
        celery_task_id="task-of-the-lost-worker",
    )
    conversation.status = conversation.Status.NEEDS_HUMAN
    conversation.handoff_reason = reason
    conversation.handoff_at = started + timedelta(seconds=5)
    conversation.save()
    return run


def test_a_redelivered_run_whose_lost_delivery_handed_off_tells_the_customer() -> None:
    run = _run_whose_lost_delivery_handed_off(reason="The customer asked for a person.")

    with tasks_sent_to(new_queue_name("handed-off")):
        agent_run_execute(run_id=str(run.pk), task_id="task-of-the-lost-worker")

    run.refresh_from_db()
    reply = run.conversation.messages.get(role="assistant")
    assert run.status == AgentRun.Status.FAILED
    assert "handed the conversation off" in run.error
    assert reply.content == HANDOFF_REPLY
    assert reply.run == run


def test_a_redelivered_run_that_staff_took_over_stays_silent() -> None:
    run = _run_whose_lost_delivery_handed_off(reason=STAFF_TAKE_OVER_REASON)

    with tasks_sent_to(new_queue_name("taken-over")):
        agent_run_execute(run_id=str(run.pk), task_id="task-of-the-lost-worker")

    run.refresh_from_db()
    assert run.status == AgentRun.Status.CANCELLED
    assert not run.conversation.messages.filter(role="assistant").exists()
