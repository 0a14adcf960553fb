"""Conversations untouched past CONVERSATION_RETENTION_DAYS are deleted daily, whole."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from agents.models import AgentRun
from agents.run_stream import run_events_read
from conversations.models import Conversation, Message, ReplyFeedback
from conversations.services import (
    abandoned_guests_delete,
    conversations_past_retention_delete,
    guest_customer_create,
    message_post,
)
from conversations.tasks import delete_conversations_past_retention
from tests.agents.factories import AgentRunFactory
from tests.agents.races import a_reply_being_stored
from tests.conversations.factories import ConversationFactory, MessageFactory, ReplyFeedbackFactory
from tests.support.celery_worker import new_queue_name, tasks_sent_to
from tests.support.transactions import saved_meanwhile

pytestmark = pytest.mark.django_db


def _conversation(*, untouched_days: float, status: str = "active") -> Conversation:
    """A conversation with a question, its run, a rated reply, last written in days ago."""
    conversation = ConversationFactory.create(status=status)
    question = MessageFactory.create(conversation=conversation)
    run = AgentRunFactory.create(
        conversation=conversation, user_message=question, status="succeeded"
    )
    reply = MessageFactory.create(conversation=conversation, role=Message.Role.ASSISTANT, run=run)
    ReplyFeedbackFactory.create(reply=reply, rating="helpful")
    Conversation.objects.filter(pk=conversation.pk).update(
        updated_at=timezone.now() - timedelta(days=untouched_days)
    )
    return conversation


def test_conversations_untouched_past_the_retention_go_with_everything_in_them(
    settings,
) -> None:
    settings.CONVERSATION_RETENTION_DAYS = 90
    old_active = _conversation(untouched_days=91)
    old_closed = _conversation(untouched_days=400, status="closed")
    waiting_for_staff = _conversation(untouched_days=120, status="needs_human")
    recent = _conversation(untouched_days=89)

    deleted = conversations_past_retention_delete(batch_size=1)

    assert deleted == 2
    assert set(Conversation.objects.values_list("pk", flat=True)) == {
        waiting_for_staff.pk,
        recent.pk,
    }
    kept = {waiting_for_staff.pk, recent.pk}
    assert set(Message.objects.values_list("conversation", flat=True)) == kept
    assert set(AgentRun.objects.values_list("conversation", flat=True)) == kept
    assert ReplyFeedback.objects.count() == 2
    # Their customers stay (a guest left with none goes with the abandoned guests).
    assert User.objects.filter(pk__in=[old_active.owner_id, old_closed.owner_id]).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_conversation_written_in_while_its_batch_is_deleted_is_kept(settings) -> None:
    settings.CONVERSATION_RETENTION_DAYS = 90
    conversation = _conversation(untouched_days=91)

    # The customer comes back as the nightly job runs: the job selected the conversation, and
    # the message commits before the job's batch is deleted.
    with (
        tasks_sent_to(new_queue_name("retention")),
        saved_meanwhile(
            lambda: message_post(
                conversation=conversation, author=conversation.owner, content="Still there?"
            )
        ),
    ):
        deleted = conversations_past_retention_delete()

    assert deleted == 0
    assert conversation.messages.filter(content="Still there?").exists()
    assert AgentRun.objects.filter(conversation=conversation, status="queued").exists()


@pytest.mark.django_db(transaction=True)
def test_a_conversation_whose_reply_is_being_stored_as_the_job_runs_waits_not_deadlocks(
    settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.CONVERSATION_RETENTION_DAYS = 1
    conversation = _conversation(untouched_days=2)
    # A turn dispatched days late (a broker outage): its worker holds the run and turns to the
    # conversation a second later, as the job locks the conversation and waits for the run.
    run, storing, worker = a_reply_being_stored(monkeypatch, conversation)

    deleted = conversations_past_retention_delete()
    storing.join(30)

    stored = worker.get("returned")
    assert isinstance(stored, AgentRun)  # not a deadlock's victim
    assert stored.status == AgentRun.Status.SUCCEEDED
    assert deleted == 1  # storing a reply leaves the conversation's last write as it was
    assert not AgentRun.objects.filter(pk=run.pk).exists()


def test_with_no_retention_set_nothing_is_deleted(settings) -> None:
    settings.CONVERSATION_RETENTION_DAYS = 0
    _conversation(untouched_days=4000)

    delete_conversations_past_retention()

    assert Conversation.objects.count() == 1


def test_a_guest_left_with_no_conversation_goes_as_a_guest_who_never_wrote(settings) -> None:
    settings.CONVERSATION_RETENTION_DAYS = 30
    guest = guest_customer_create()
    User.objects.filter(pk=guest.pk).update(date_joined=timezone.now() - timedelta(days=60))
    conversation = _conversation(untouched_days=45)
    Conversation.objects.filter(pk=conversation.pk).update(owner=guest)

    conversations_past_retention_delete()
    abandoned_guests_delete()

    assert not User.objects.filter(pk=guest.pk).exists()


def test_a_run_left_queued_in_a_conversation_past_the_retention_ends_its_followers(
    settings, django_capture_on_commit_callbacks
) -> None:
    settings.CONVERSATION_RETENTION_DAYS = 30
    conversation = _conversation(untouched_days=45)
    queued = AgentRunFactory.create(conversation=conversation)

    with django_capture_on_commit_callbacks(execute=True):
        deleted = conversations_past_retention_delete()

    assert deleted == 1
    assert not AgentRun.objects.exists()
    assert [event.type for event in run_events_read(run_id=str(queued.pk))] == ["run.deleted"]
