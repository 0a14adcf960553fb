from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from agents.models import AgentRun
from conversations.models import Conversation
from tests.conversations.factories import ConversationFactory, MessageFactory, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(StaffFactory())
    return client


def test_staff_see_the_needs_human_queue_with_messages_inline(staff_client: Client) -> None:
    waiting = ConversationFactory(status="needs_human", handoff_reason="Asked for a person")
    MessageFactory(conversation=waiting, content="<b>Can I speak to someone?</b>")

    listing = staff_client.get("/admin/conversations/conversation/?status__exact=needs_human")
    detail = staff_client.get(f"/admin/conversations/conversation/{waiting.pk}/change/")

    assert listing.status_code == 200
    assert "Asked for a person" in listing.content.decode()
    assert "&lt;b&gt;Can I speak to someone?&lt;/b&gt;" in detail.content.decode()


def test_a_staff_reply_from_admin_reaches_the_customer(staff_client: Client) -> None:
    conversation = ConversationFactory(status="needs_human")

    response = staff_client.post(
        f"/admin/conversations/conversation/{conversation.pk}/change/",
        {
            "title": "",
            "status": "needs_human",
            "staff_reply": "Hello, this is Sam from Beeman Honey.",
            "messages-TOTAL_FORMS": "0",
            "messages-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302
    reply = conversation.messages.get()
    assert reply.role == "staff"
    assert reply.content == "Hello, this is Sam from Beeman Honey."


def test_hand_back_returns_the_conversation_to_the_assistant(staff_client: Client) -> None:
    conversation = ConversationFactory(status="needs_human", handoff_reason="Asked")

    staff_client.post(
        "/admin/conversations/conversation/",
        {"action": "hand_back_to_assistant", "_selected_action": [str(conversation.pk)]},
    )

    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.ACTIVE
    assert conversation.handoff_reason == ""


def test_agent_runs_are_read_only_with_their_trace(staff_client: Client) -> None:
    conversation = ConversationFactory()
    run = AgentRun.objects.create(
        conversation=conversation,
        user_message=MessageFactory(conversation=conversation),
        route="sales",
        tool_calls=[{"tool": "search_products", "args": {"query": "<script>x</script>"}}],
    )

    page = staff_client.get(f"/admin/agents/agentrun/{run.pk}/change/").content.decode()

    assert "search_products" in page
    assert "<script>x</script>" not in page
    assert staff_client.get("/admin/agents/agentrun/add/").status_code == 403


def test_the_needs_human_queue_lists_waiting_conversations_oldest_first(staff_client) -> None:
    newer = ConversationFactory(status="needs_human", handoff_reason="budget")
    older = ConversationFactory(status="needs_human", handoff_reason="Asked for a person")
    ConversationFactory(status="active")
    Conversation.objects.filter(pk=older.pk).update(handoff_at=timezone.now() - timedelta(hours=2))
    Conversation.objects.filter(pk=newer.pk).update(handoff_at=timezone.now())

    page = staff_client.get("/admin/conversations/handoffqueueentry/").content.decode()

    assert page.index("Asked for a person") < page.index("budget")
    assert page.count('class="action-select"') == 2
