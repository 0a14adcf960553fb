"""Conversation services against the database, including interleavings with staff actions."""

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any
from uuid import UUID

import pytest

from agents import selectors as agents_selectors
from agents import services as agents_services
from agents.models import AgentRun
from agents.services import agent_run_cancel, agent_run_execute
from beemanhoney.common.exceptions import ApplicationError, DeletedMeanwhile
from conversations import services
from conversations.models import Conversation, Message, ReplyFeedback
from conversations.services import (
    conversation_close_by_customer,
    conversation_delete_by_customer,
    conversation_handoff,
    conversations_close,
    conversations_delete,
    conversations_hand_back,
    message_post,
    reply_feedback_give,
)
from tests.agents.factories import AgentRunFactory
from tests.agents.loopback import loopback_openai
from tests.agents.races import a_reply_being_stored
from tests.conversations.factories import ConversationFactory, MessageFactory
from tests.support.fake_openai import ChatText, ChatToolCalls
from tests.support.transactions import in_thread, saved_meanwhile

pytestmark = pytest.mark.django_db


def test_a_message_posted_as_staff_hand_the_conversation_back_is_answered() -> None:
    conversation = ConversationFactory.create(status=Conversation.Status.NEEDS_HUMAN)
    # The request read the conversation with staff; the hand-back committed before its
    # message, so the hand-back found nothing to answer.
    read_by_the_request = Conversation.objects.get(pk=conversation.pk)
    conversations_hand_back(conversation_ids=[conversation.pk])

    message, run = message_post(
        conversation=read_by_the_request, author=conversation.owner, content="Hello?"
    )

    assert run is not None
    assert run.user_message_id == message.pk
    assert run.status == AgentRun.Status.QUEUED


def test_a_message_posted_as_the_conversation_is_closed_is_refused() -> None:
    conversation = ConversationFactory.create()
    read_by_the_request = Conversation.objects.get(pk=conversation.pk)
    conversations_close(conversation_ids=[conversation.pk])

    with pytest.raises(ApplicationError) as refused:
        message_post(conversation=read_by_the_request, author=conversation.owner, content="Hi")

    assert refused.value.status_code == 409
    assert not Message.objects.filter(conversation=conversation).exists()
    assert not AgentRun.objects.exists()


def test_a_message_whose_run_a_take_over_silenced_is_answered_on_hand_back(settings) -> None:
    conversation = ConversationFactory.create()
    _, queued = message_post(
        conversation=conversation, author=conversation.owner, content="Have you got MAN-15?"
    )
    assert queued is not None
    conversation_handoff(conversation_id=conversation.pk, reason="Taken over by staff.")
    agent_run_execute(run_id=str(queued.pk))  # the worker finds staff with the conversation

    conversations_hand_back(conversation_ids=[conversation.pk])
    with loopback_openai(settings) as server:
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "sales"})]),
            ChatText("Yes, MAN-15 is in stock."),
        )
        agent_run_execute(run_id=str(queued.pk))

    run = AgentRun.objects.get(pk=queued.pk)
    assert run.status == AgentRun.Status.SUCCEEDED
    assert run.error == ""
    assert list(conversation.messages.values_list("role", "content")) == [
        ("user", "Have you got MAN-15?"),
        ("assistant", "Yes, MAN-15 is in stock."),
    ]


def test_a_message_whose_run_the_customer_cancelled_is_not_answered_on_hand_back() -> None:
    conversation = ConversationFactory.create()
    _, queued = message_post(
        conversation=conversation, author=conversation.owner, content="Have you got MAN-15?"
    )
    assert queued is not None
    agent_run_cancel(run=queued)
    conversation_handoff(conversation_id=conversation.pk, reason="Taken over by staff.")

    conversations_hand_back(conversation_ids=[conversation.pk])

    run = AgentRun.objects.get(pk=queued.pk)
    assert run.status == AgentRun.Status.CANCELLED
    assert run.error == "Cancelled by the customer."


def test_a_conversation_deleted_in_another_tab_meanwhile_answers_404_and_stores_nothing() -> None:
    conversation = ConversationFactory.create()
    question = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content="Hello?"
    )
    run = AgentRunFactory.create(conversation=conversation, user_message=question)
    # Each request read the conversation (and the run) before the delete committed.
    read_by_the_requests = Conversation.objects.get(pk=conversation.pk)
    Conversation.objects.filter(pk=conversation.pk).delete()

    with pytest.raises(DeletedMeanwhile) as posted:
        message_post(conversation=read_by_the_requests, author=conversation.owner, content="Hi")
    with pytest.raises(DeletedMeanwhile):
        conversation_close_by_customer(conversation=read_by_the_requests)
    with pytest.raises(DeletedMeanwhile):
        agent_run_cancel(run=run)

    assert posted.value.status_code == 404
    assert not Message.objects.exists()
    assert not AgentRun.objects.exists()


# Outside a test's transaction: the reply's foreign key is checked only at commit.
@pytest.mark.django_db(transaction=True)
def test_rating_a_reply_whose_conversation_was_deleted_meanwhile_answers_404() -> None:
    reply = MessageFactory.create(role=Message.Role.ASSISTANT, content="We have heather honey.")
    # The request read the reply before the conversation's delete committed.
    read_by_the_request = Message.objects.get(pk=reply.pk)
    Conversation.objects.filter(pk=reply.conversation_id).delete()

    with pytest.raises(DeletedMeanwhile) as rated:
        reply_feedback_give(reply=read_by_the_request, rating=ReplyFeedback.Rating.HELPFUL)

    assert rated.value.status_code == 404
    assert not ReplyFeedback.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("retries_for_seconds", "waited_at_last"),
    [(10.0, False), (0.2, True)],
    ids=["retried until let go", "then waited for"],
)
def test_staff_deleting_a_conversation_as_its_customer_posts_delete_the_new_message_too(
    monkeypatch: pytest.MonkeyPatch, retries_for_seconds: float, waited_at_last: bool
) -> None:
    monkeypatch.setattr(services, "LOCK_RETRIES_FOR_SECONDS", retries_for_seconds)
    runs_lock = agents_services.agent_runs_lock
    waits: list[bool] = []  # whether each lock of the runs, after the first, waits

    def runs_lock_noted(**kwargs: Any) -> None:
        waits.append(not kwargs.get("nowait", False))
        runs_lock(**kwargs)

    monkeypatch.setattr(agents_services, "agent_runs_lock", runs_lock_noted)
    conversation = ConversationFactory.create()
    post = partial(message_post, conversation=conversation, author=conversation.owner)

    # The post holds the conversation and its new message until it commits, a second on.
    with saved_meanwhile(lambda: post(content="Still there?")):
        conversations_delete(conversations=Conversation.objects.filter(pk=conversation.pk))

    assert not Conversation.objects.exists()
    assert not Message.objects.exists()
    assert not AgentRun.objects.exists()
    assert len(waits) > 2  # let go at least once
    assert waits[-1] == waited_at_last  # the last attempt's second lock of the runs


@pytest.mark.django_db(transaction=True)
def test_a_customer_closing_as_a_reply_is_stored_waits_for_it_rather_than_deadlocking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run, storing, worker = a_reply_being_stored(monkeypatch)

    closed = conversation_close_by_customer(conversation=run.conversation)
    storing.join(30)

    assert closed.status == Conversation.Status.CLOSED
    assert "raised" not in worker
    run.refresh_from_db()
    assert run.status == AgentRun.Status.SUCCEEDED  # stored before the close, so kept
    assert "deadlock" not in run.error


@pytest.mark.django_db(transaction=True)
def test_a_customer_deleting_as_a_worker_claims_the_run_waits_rather_than_deadlocking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = AgentRunFactory.create(celery_task_id="task-1")
    unfinished_run_ids = agents_selectors.conversations_unfinished_run_ids
    worker: dict[str, object] = {}
    claiming: list[threading.Thread] = []

    def read_as_the_worker_claims_the_run(**kwargs: Any) -> list[str]:
        claiming.append(in_thread(lambda: agents_services._start(str(run.pk), "task-1"), worker))
        time.sleep(1.0)  # the claim now waits on whatever the delete holds
        return unfinished_run_ids(**kwargs)

    monkeypatch.setattr(
        agents_selectors, "conversations_unfinished_run_ids", read_as_the_worker_claims_the_run
    )
    conversation_delete_by_customer(conversation=run.conversation)
    claiming[0].join(30)

    assert not Conversation.objects.filter(pk=run.conversation_id).exists()
    assert worker == {"returned": None}  # it found the run gone


@pytest.mark.django_db(transaction=True)
def test_conversations_deleted_as_a_reply_is_stored_wait_for_it_rather_than_deadlocking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run, storing, worker = a_reply_being_stored(monkeypatch)

    conversations_delete(conversations=Conversation.objects.filter(pk=run.conversation_id))
    storing.join(30)

    assert "raised" not in worker
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()  # the reply stored first went with it
    assert not AgentRun.objects.exists()


def _closed_by_its_customer(conversation: Conversation) -> None:
    conversation_close_by_customer(conversation=conversation)


def _deleted(conversation: Conversation) -> None:
    conversations_delete(conversations=Conversation.objects.filter(pk=conversation.pk))


# What a customer's close or a delete leaves of the conversation, and of its run.
CLOSED_OR_DELETED = [
    pytest.param(_closed_by_its_customer, Conversation.Status.CLOSED, id="closed"),
    pytest.param(_deleted, None, id="deleted"),
]


def _status_after(conversation: Conversation) -> str | None:
    return Conversation.objects.filter(pk=conversation.pk).values_list("status", flat=True).first()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("end", "left"), CLOSED_OR_DELETED)
def test_a_run_added_and_being_stored_as_its_conversation_ends_is_waited_for_not_deadlocked(
    monkeypatch: pytest.MonkeyPatch, end: Callable[[Conversation], None], left: str | None
) -> None:
    conversation = ConversationFactory.create()
    runs_lock = agents_services.agent_runs_lock
    added: list[tuple[AgentRun, threading.Thread, dict[str, object]]] = []

    def lock_runs_then_a_run_is_added_and_its_reply_stored(**kwargs: Any) -> None:
        runs_lock(**kwargs)
        if not added:  # between the lock of the runs and of the conversation
            added.append(a_reply_being_stored(monkeypatch, conversation))

    monkeypatch.setattr(
        agents_services, "agent_runs_lock", lock_runs_then_a_run_is_added_and_its_reply_stored
    )
    end(conversation)
    run, storing, worker = added[0]
    storing.join(30)

    stored = worker.get("returned")
    assert isinstance(stored, AgentRun)  # not a deadlock's victim, failed on a deleted run
    assert stored.status == AgentRun.Status.SUCCEEDED  # stored first
    assert _status_after(conversation) == left
    assert AgentRun.objects.filter(pk=run.pk).exists() == (left is not None)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("end", "left"), CLOSED_OR_DELETED)
def test_a_conversation_ending_as_its_next_run_is_dispatched_waits_for_it_not_deadlock(
    monkeypatch: pytest.MonkeyPatch, end: Callable[[Conversation], None], left: str | None
) -> None:
    answered = AgentRunFactory.create(status=AgentRun.Status.SUCCEEDED)
    queued = AgentRunFactory.create(conversation=answered.conversation, dispatched_at=None)
    conversation_locked = threading.Event()
    in_flight = agents_services._in_flight

    def in_flight_a_second_later(runs: Any) -> Any:
        conversation_locked.set()  # the dispatch holds the conversation, then takes the run
        time.sleep(1.0)
        return in_flight(runs)

    monkeypatch.setattr(agents_services, "_in_flight", in_flight_a_second_later)
    dispatch: dict[str, object] = {}
    dispatching = in_thread(
        lambda: agents_services.agent_run_dispatch_next(conversation_id=queued.conversation_id),
        dispatch,
    )
    assert conversation_locked.wait(10)

    end(queued.conversation)
    dispatching.join(30)

    assert "raised" not in dispatch
    assert dispatch["returned"] == queued  # dispatched first
    assert _status_after(queued.conversation) == left
    statuses = list(AgentRun.objects.values_list("status", flat=True).order_by("created_at"))
    assert statuses == ([] if left is None else ["succeeded", "cancelled"])


@pytest.mark.django_db(transaction=True)
def test_a_hand_back_as_a_copy_of_its_silenced_run_s_task_is_delivered_does_not_deadlock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conversation = ConversationFactory.create()
    _, run = message_post(conversation=conversation, author=conversation.owner, content="m1?")
    assert run is not None
    conversation_handoff(conversation_id=conversation.pk, reason="Taken over by staff.")
    assert agents_services._start(str(run.pk), run.celery_task_id) is None  # silenced
    budget_exceeded = agents_selectors.budget_exceeded
    worker: dict[str, object] = {}
    delivered: list[threading.Thread] = []

    def budget_read_as_a_copy_is_delivered(**kwargs: Any) -> str | None:
        # The hand-back holds what it locked; a copy of the run's task is delivered now.
        start = partial(agents_services._start, str(run.pk), run.celery_task_id)
        delivered.append(in_thread(start, worker))
        time.sleep(1.0)
        return budget_exceeded(**kwargs)

    monkeypatch.setattr(agents_selectors, "budget_exceeded", budget_read_as_a_copy_is_delivered)
    report = conversations_hand_back(conversation_ids=[conversation.pk])
    delivered[0].join(30)

    assert report.handed == [conversation.pk]
    assert "raised" not in worker
    run.refresh_from_db()
    assert run.status in {AgentRun.Status.QUEUED, AgentRun.Status.RUNNING}  # to answer m1


@pytest.mark.django_db(transaction=True)
def test_a_worker_starting_a_run_as_its_customer_closes_finds_it_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = AgentRunFactory.create(celery_task_id="task-1")
    closing = threading.Event()
    close = services.conversations_close

    def close_then_wait(**kwargs: object) -> list[UUID]:
        closed = close(**kwargs)  # type: ignore[arg-type]
        closing.set()  # the conversation is locked until the close commits
        time.sleep(1.0)
        return closed

    monkeypatch.setattr(services, "conversations_close", close_then_wait)
    customer: dict[str, object] = {}
    closer = in_thread(
        lambda: conversation_close_by_customer(conversation=run.conversation), customer
    )
    assert closing.wait(10)

    started = agents_services._start(str(run.pk), "task-1")
    closer.join(30)

    assert "raised" not in customer
    assert started is None
    run.refresh_from_db()
    assert run.status == AgentRun.Status.CANCELLED
