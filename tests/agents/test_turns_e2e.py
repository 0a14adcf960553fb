"""End-to-end turns: HTTP API → Postgres → Redis broker → a real Celery worker → reply."""

import re
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from agents.models import AgentRun
from agents.providers.offline import SMALL_TALK_REPLIES
from agents.providers.router import SmallTalk
from catalog.models import Product
from conversations.models import Conversation, Message
from conversations.services import conversations_hand_back
from tests.agents.shop import customer_in_small_shop

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 60


def _post(
    client: APIClient,
    conversation: Conversation,
    content: str,
    *,
    headers: dict[str, str] | None = None,
) -> dict:
    response = client.post(
        f"/api/conversations/{conversation.id}/messages/", {"content": content}, headers=headers
    )
    assert response.status_code == 202, response.content
    return response.json()


def _finished(client: APIClient, run_id: str) -> dict:
    run = client.get(f"/api/runs/{run_id}/?wait={WAIT}").json()
    assert run["status"] in {"succeeded", "failed", "cancelled"}, run
    return run


@pytest.fixture
def customer(celery_worker) -> tuple[APIClient, Conversation]:
    return customer_in_small_shop()


def test_a_product_question_gets_a_grounded_sales_reply(customer) -> None:
    client, conversation = customer

    posted = _post(client, conversation, "Have you got something for a sore throat?")
    run = _finished(client, posted["run"]["id"])

    reply = run["reply"]["content"]
    assert run["status"] == "succeeded"
    assert run["route"] == "sales"
    assert "Manuka Honey UMF 15+ 250g — £44.95" in reply
    for name, price in re.findall(r"- (.+?) — £(\d+\.\d\d)", reply):
        assert Product.objects.get(name=name).price == Decimal(price)
    stored = AgentRun.objects.get(pk=run["id"])
    assert stored.tool_calls[0]["tool"] == "search_products"
    assert stored.node_sequence == ["supervisor", "sales", "sales_tools", "sales"]


def test_a_shipping_question_gets_the_support_route_and_the_matching_article(customer) -> None:
    client, conversation = customer

    run = _finished(
        client, _post(client, conversation, "How long does delivery take?")["run"]["id"]
    )

    assert run["route"] == "support"
    assert "UK delivery times and costs" in run["reply"]["content"]
    assert "2-4 working days" in run["reply"]["content"]


def test_asking_for_a_person_hands_the_conversation_to_staff(customer) -> None:
    client, conversation = customer

    run = _finished(client, _post(client, conversation, "Can I talk to a person?")["run"]["id"])
    later = _post(client, conversation, "Hello?")

    conversation.refresh_from_db()
    assert run["route"] == "handoff"
    assert conversation.status == Conversation.Status.NEEDS_HUMAN
    assert later["run"] is None
    assert conversation.messages.filter(role="assistant").count() == 1


def test_a_question_asked_while_staff_had_the_conversation_is_answered_on_hand_back(
    customer,
) -> None:
    client, conversation = customer
    _finished(client, _post(client, conversation, "Can I talk to a person?")["run"]["id"])
    waiting = _post(client, conversation, "Have you got something for a sore throat?")

    conversations_hand_back(conversation_ids=[conversation.id])

    run = AgentRun.objects.get(user_message_id=waiting["message"]["id"])
    answer = _finished(client, str(run.id))
    assert waiting["run"] is None
    assert answer["status"] == "succeeded"
    assert "Manuka Honey UMF 15+ 250g" in answer["reply"]["content"]


def test_a_greeting_is_greeted_back_and_the_assistant_stays_on(customer) -> None:
    client, conversation = customer

    hello = _finished(client, _post(client, conversation, "Hello!")["run"]["id"])
    question = _post(client, conversation, "Have you got something for a sore throat?")
    answer = _finished(client, question["run"]["id"])

    assert (hello["route"], hello["reply"]["content"]) == (
        "sales",
        SMALL_TALK_REPLIES[SmallTalk.GREETING],
    )
    assert answer["status"] == "succeeded"
    assert "Manuka Honey UMF 15+ 250g" in answer["reply"]["content"]
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.ACTIVE


def test_two_quick_messages_are_answered_in_order(customer) -> None:
    client, conversation = customer

    first = _post(client, conversation, "Do you sell beeswax wraps?")
    second = _post(client, conversation, "What is your returns policy?")
    first_run = AgentRun.objects.get(pk=_finished(client, first["run"]["id"])["id"])
    second_run = AgentRun.objects.get(pk=_finished(client, second["run"]["id"])["id"])

    assert first_run.finished_at is not None
    assert second_run.started_at is not None
    assert first_run.finished_at <= second_run.started_at
    replies = list(conversation.messages.filter(role="assistant").order_by("id"))
    assert [reply.run_id for reply in replies] == [first_run.id, second_run.id]


def test_a_repeated_idempotency_key_creates_nothing_new(customer) -> None:
    client, conversation = customer

    first = _post(client, conversation, "Any buckwheat honey?", headers={"Idempotency-Key": "abc"})
    _finished(client, first["run"]["id"])
    again = _post(client, conversation, "Any buckwheat honey?", headers={"Idempotency-Key": "abc"})

    assert again["message"]["id"] == first["message"]["id"]
    assert again["run"]["id"] == first["run"]["id"]
    assert Message.objects.filter(conversation=conversation).count() == 2
    assert AgentRun.objects.filter(conversation=conversation).count() == 1
