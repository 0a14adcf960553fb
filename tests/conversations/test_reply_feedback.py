"""A customer's verdict on the assistant's replies: given, changed, withdrawn, shown."""

from functools import partial

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from conversations.models import Message, ReplyFeedback
from conversations.services import reply_feedback_give
from tests.agents.factories import AgentRunFactory
from tests.conversations.factories import ConversationFactory, MessageFactory, ReplyFeedbackFactory
from tests.support.transactions import saved_meanwhile

pytestmark = pytest.mark.django_db


@pytest.fixture
def reply() -> Message:
    run = AgentRunFactory.create()
    return MessageFactory.create(
        conversation=run.conversation,
        role=Message.Role.ASSISTANT,
        run=run,
        content="Our heather honey is £8.50.",
        agent="sales",
    )


def _owner_of(message: Message) -> APIClient:
    client = APIClient()
    client.force_authenticate(message.conversation.owner)
    return client


def _url(message: Message) -> str:
    return f"/api/conversations/{message.conversation_id}/messages/{message.id}/feedback/"


def test_a_customer_rates_a_reply_and_sees_the_rating_with_it(reply: Message) -> None:
    client = _owner_of(reply)

    given = client.put(
        _url(reply), {"rating": "unhelpful", "comment": "  I asked about manuka.  "}, format="json"
    )
    messages = client.get(f"/api/conversations/{reply.conversation_id}/messages/").json()

    assert given.status_code == 201
    assert given.json()["rating"] == "unhelpful"
    assert given.json()["comment"] == "I asked about manuka."
    assert [m["feedback"] for m in messages["results"]] == [
        None,
        {
            "rating": "unhelpful",
            "comment": "I asked about manuka.",
            "created_at": given.json()["created_at"],
            "updated_at": given.json()["updated_at"],
        },
    ]
    assert client.get(_url(reply)).json() == given.json()


def test_rating_again_replaces_the_verdict_whole(reply: Message) -> None:
    client = _owner_of(reply)
    client.put(_url(reply), {"rating": "unhelpful", "comment": "Wrong jar."}, format="json")

    again = client.put(_url(reply), {"rating": "helpful"}, format="json")

    assert again.status_code == 200
    assert list(ReplyFeedback.objects.values_list("reply", "rating", "comment")) == [
        (reply.id, "helpful", "")
    ]


@pytest.mark.django_db(transaction=True)
def test_of_two_first_ratings_at_once_the_second_replaces_the_first_and_answers_200(
    reply: Message,
) -> None:
    first = partial(reply_feedback_give, reply=reply, rating="unhelpful")

    # The first, from another tab, is stored but not committed as the second is read.
    with saved_meanwhile(first):
        second = _owner_of(reply).put(_url(reply), {"rating": "helpful"}, format="json")

    assert second.status_code == 200
    assert list(ReplyFeedback.objects.values_list("rating", flat=True)) == ["helpful"]


def test_a_withdrawn_rating_is_gone_and_withdrawing_again_is_404(reply: Message) -> None:
    client = _owner_of(reply)
    client.put(_url(reply), {"rating": "helpful"}, format="json")

    withdrawn = client.delete(_url(reply))
    again = client.delete(_url(reply))

    assert withdrawn.status_code == 204
    assert again.status_code == 404
    assert client.get(_url(reply)).status_code == 404
    assert not ReplyFeedback.objects.exists()


@pytest.mark.parametrize("role", [Message.Role.USER, Message.Role.STAFF])
def test_only_the_assistant_s_replies_take_feedback(role: str) -> None:
    message = MessageFactory.create(role=role)
    client = _owner_of(message)

    given = client.put(_url(message), {"rating": "helpful"}, format="json")
    withdrawn = client.delete(_url(message))

    assert given.status_code == 400
    assert given.json() == {
        "detail": "Only the assistant's replies take feedback.",
        "code": "not_a_reply",
    }
    assert withdrawn.status_code == 400
    assert not ReplyFeedback.objects.exists()


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"rating": ["This field is required."]}),
        ({"rating": "meh"}, {"rating": ['"meh" is not a valid choice.']}),
        (
            {"rating": "helpful", "comment": "x" * 1001},
            {"comment": ["Ensure this field has no more than 1000 characters."]},
        ),
        ({"rating": "helpful", "stars": 5}, {"stars": ["Unknown field."]}),
        ({"rating": "helpful", "comment": 5}, {"comment": ["Not a valid string."]}),
    ],
)
def test_bad_feedback_is_a_400_naming_the_field_and_nothing_is_stored(
    reply: Message, body: dict, errors: dict
) -> None:
    response = _owner_of(reply).put(_url(reply), body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == errors
    assert not ReplyFeedback.objects.exists()


def test_a_message_of_another_conversation_of_the_customer_is_404(reply: Message) -> None:
    other = ConversationFactory.create(owner=reply.conversation.owner)
    wrong_pair = f"/api/conversations/{other.id}/messages/{reply.id}/feedback/"

    response = _owner_of(reply).put(wrong_pair, {"rating": "helpful"}, format="json")

    assert response.status_code == 404
    assert not ReplyFeedback.objects.exists()


def test_a_closed_conversation_s_replies_can_still_be_rated(reply: Message) -> None:
    reply.conversation.status = "closed"
    reply.conversation.save()

    response = _owner_of(reply).put(_url(reply), {"rating": "helpful"}, format="json")

    assert response.status_code == 201


def test_the_message_list_reads_the_feedback_in_its_one_statement(reply: Message) -> None:
    for _ in range(5):
        run = AgentRunFactory.create(conversation=reply.conversation)
        answer = MessageFactory.create(
            conversation=reply.conversation, role=Message.Role.ASSISTANT, run=run
        )
        ReplyFeedbackFactory.create(reply=answer, rating="helpful")
    client = _owner_of(reply)
    url = f"/api/conversations/{reply.conversation_id}/messages/"

    with CaptureQueriesContext(connection) as queries:
        body = client.get(url).json()

    rated = [m["feedback"]["rating"] for m in body["results"] if m["feedback"]]
    assert rated == ["helpful"] * 5
    statements = [q["sql"] for q in queries.captured_queries]
    assert not any('FROM "conversations_replyfeedback"' in sql for sql in statements)
    assert any('JOIN "conversations_replyfeedback"' in sql for sql in statements)


@pytest.mark.parametrize(
    ("body", "field"),
    [('{"rating": "\\ud800"}', "rating"), ('{"rating": "helpful", "\\ud800": 1}', "\ud800")],
)
def test_a_lone_surrogate_the_error_repeats_is_written_escaped_and_nothing_is_stored(
    reply: Message, body: str, field: str
) -> None:
    given = _owner_of(reply).put(_url(reply), body, content_type="application/json")

    assert given.status_code == 400
    assert b"\\ud800" in given.content
    assert field in given.json()["errors"]
    assert not ReplyFeedback.objects.exists()
