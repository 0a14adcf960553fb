"""Every object route against every kind of caller: no cross-customer read or write."""

import pytest
from rest_framework.test import APIClient

from agents.models import AgentRun
from conversations.models import Conversation, Message, ReplyFeedback
from conversations.services import guest_customer_create
from tests.agents.factories import AgentRunFactory
from tests.conversations.factories import (
    ConversationFactory,
    MessageFactory,
    ReplyFeedbackFactory,
    StaffFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ROUTES = [
    ("get", "/api/conversations/{conversation}/"),
    ("delete", "/api/conversations/{conversation}/"),
    ("post", "/api/conversations/{conversation}/close/"),
    ("get", "/api/conversations/{conversation}/messages/"),
    ("post", "/api/conversations/{conversation}/messages/"),
    ("get", "/api/runs/{run}/"),
    ("post", "/api/runs/{run}/cancel/"),
    ("get", "/api/conversations/{conversation}/messages/{reply}/feedback/"),
    ("put", "/api/conversations/{conversation}/messages/{reply}/feedback/"),
    ("delete", "/api/conversations/{conversation}/messages/{reply}/feedback/"),
]


@pytest.fixture
def owned_by_a() -> dict:
    conversation = ConversationFactory.create()
    run = AgentRunFactory.create(conversation=conversation)
    reply = MessageFactory.create(
        conversation=conversation, role=Message.Role.ASSISTANT, run=run, content="We do."
    )
    ReplyFeedbackFactory.create(reply=reply, rating=ReplyFeedback.Rating.UNHELPFUL)
    return {
        "owner": conversation.owner,
        "conversation": conversation.id,
        "run": run.id,
        "reply": reply.id,
    }


def _as(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def _call(client: APIClient, method: str, path: str) -> int:
    body = {"rating": "helpful"} if path.endswith("/feedback/") else {"content": "hi"}
    return getattr(client, method)(path, body, format="json").status_code


def _rows_written() -> tuple[int, int, list[tuple[str, str]], list[str]]:
    return (
        Message.objects.count(),
        AgentRun.objects.filter(status="queued").count(),
        list(ReplyFeedback.objects.values_list("rating", "comment")),
        list(Conversation.objects.values_list("status", flat=True)),
    )


@pytest.mark.parametrize(("method", "route"), ROUTES)
@pytest.mark.parametrize(
    ("caller", "expected"),
    [("customer_b", 404), ("guest", 404), ("staff", 404), ("anonymous", 401)],
)
def test_nobody_but_the_owner_reaches_a_conversation_or_run(
    owned_by_a, method, route, caller, expected
) -> None:
    callers = {
        "customer_b": UserFactory.create(),
        "guest": guest_customer_create(),
        "staff": StaffFactory.create(),
        "anonymous": None,
    }
    before = _rows_written()

    status = _call(_as(callers[caller]), method, route.format(**owned_by_a))

    assert status == expected
    assert _rows_written() == before


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_the_owner_reaches_every_route(owned_by_a, method, route) -> None:
    status = _call(_as(owned_by_a["owner"]), method, route.format(**owned_by_a))

    assert status in {200, 202, 204}


def test_lists_never_include_another_customers_rows(owned_by_a) -> None:
    other = UserFactory.create()
    ConversationFactory.create(owner=other)

    body = _as(other).get("/api/conversations/").json()

    assert body["count"] == 1
    assert str(owned_by_a["conversation"]) not in str(body)


def test_mass_assignment_of_protected_fields_changes_nothing(owned_by_a) -> None:
    client = _as(owned_by_a["owner"])

    conversations_before = Conversation.objects.count()

    created = client.post(
        "/api/conversations/",
        {"title": "Mine", "owner": UserFactory.create().id, "status": "closed", "id": "x"},
        format="json",
    )
    product_write = client.post(
        "/api/products/", {"sku": "X-1", "name": "Free honey", "price": "0.01", "stock": 999}
    )

    assert created.status_code == 400
    assert created.json()["errors"] == {
        "owner": ["Unknown field."],
        "status": ["This field cannot be set."],
        "id": ["This field cannot be set."],
    }
    assert Conversation.objects.count() == conversations_before
    assert product_write.status_code == 403
