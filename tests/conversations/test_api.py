import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from agents.models import AgentRun
from agents.run_stream import run_events_read
from agents.services import agent_run_execute
from conversations.models import Conversation, Message, ReplyFeedback
from tests.agents.factories import AgentRunFactory
from tests.conversations.factories import (
    ConversationFactory,
    MessageFactory,
    ReplyFeedbackFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_token_endpoint_issues_tokens_that_authenticate() -> None:
    UserFactory.create(username="maya")
    client = APIClient()

    tokens = client.post(
        "/api/auth/token/", {"username": "maya", "password": "correct horse battery"}
    ).json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")

    assert set(tokens) == {"access", "refresh"}
    assert client.get("/api/conversations/").status_code == 200
    refreshed = client.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]})
    assert refreshed.status_code == 200
    assert "access" in refreshed.json()


def test_refreshing_the_token_of_a_deleted_user_is_refused_with_401() -> None:
    client = APIClient()
    tokens = client.post("/api/auth/guest/").json()
    get_user_model().objects.get(username__startswith="guest-").delete()

    refreshed = client.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]})

    assert refreshed.status_code == 401
    assert refreshed.json()["detail"] == "No active account found for the given token."


def _password_tokens(client: APIClient) -> dict[str, str]:
    UserFactory.create(username="maya")
    body = {"username": "maya", "password": "correct horse battery"}
    tokens: dict[str, str] = client.post("/api/auth/token/", body).json()
    return tokens


def test_a_refresh_answers_with_a_new_refresh_token_and_revokes_the_old_one() -> None:
    client = APIClient()
    tokens = _password_tokens(client)

    refreshed = client.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]})
    again = client.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]})
    onwards = client.post("/api/auth/token/refresh/", {"refresh": refreshed.json()["refresh"]})

    assert refreshed.status_code == 200
    assert set(refreshed.json()) == {"access", "refresh"}
    assert refreshed.json()["refresh"] != tokens["refresh"]
    assert again.status_code == 401
    assert again.json() == {
        "detail": "Token is blacklisted",
        "code": "token_not_valid",
        "errors": {"refresh": ["Token is blacklisted"]},
        "error_codes": {"refresh": ["token_not_valid"]},
    }
    assert onwards.status_code == 200


def test_a_guest_s_refresh_token_refreshes_into_a_pair_that_works() -> None:
    client = APIClient()
    tokens = client.post("/api/auth/guest/").json()

    refreshed = client.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]}).json()
    again = client.post("/api/auth/token/refresh/", {"refresh": refreshed["refresh"]})
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {refreshed['access']}")
    created = client.post("/api/conversations/", {}, format="json")

    assert set(refreshed) == {"access", "refresh"}
    assert again.status_code == 200
    assert created.status_code == 201


def test_logout_revokes_the_refresh_token() -> None:
    client = APIClient()
    tokens = _password_tokens(client)

    logout = client.post("/api/auth/logout/", {"refresh": tokens["refresh"]})
    refreshed = client.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]})
    again = client.post("/api/auth/logout/", {"refresh": tokens["refresh"]})

    assert logout.status_code == 204
    assert refreshed.status_code == 401
    assert refreshed.json()["errors"] == {"refresh": ["Token is blacklisted"]}
    assert again.status_code == 401
    assert again.json()["errors"] == {"refresh": ["Token is blacklisted"]}


def test_logout_with_a_token_that_is_not_a_refresh_token_is_refused_naming_the_field() -> None:
    client = APIClient()
    tokens = _password_tokens(client)

    malformed = client.post("/api/auth/logout/", {"refresh": "not.a.token"})
    an_access_token = client.post("/api/auth/logout/", {"refresh": tokens["access"]})
    missing = client.post("/api/auth/logout/", {})

    assert malformed.status_code == 401
    assert malformed.json() == {
        "detail": "Token is invalid",
        "code": "token_not_valid",
        "errors": {"refresh": ["Token is invalid"]},
        "error_codes": {"refresh": ["token_not_valid"]},
    }
    assert an_access_token.status_code == 401
    assert an_access_token.json()["errors"] == {"refresh": ["Token has wrong type"]}
    assert missing.status_code == 400
    assert missing.json()["errors"] == {"refresh": ["This field is required."]}


@pytest.mark.parametrize("path", ["/api/auth/token/refresh/", "/api/auth/logout/"])
def test_a_form_giving_the_refresh_token_twice_is_refused_and_the_token_kept(path: str) -> None:
    client = APIClient()
    tokens = _password_tokens(client)
    form = f"refresh=not.a.token&refresh={tokens['refresh']}"

    twice = client.post(path, form, content_type="application/x-www-form-urlencoded")
    refreshed = client.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]})

    assert twice.status_code == 400
    assert twice.json()["errors"] == {"refresh": ["Give this field once."]}
    assert twice.json()["error_codes"] == {"refresh": ["given_twice"]}
    assert refreshed.status_code == 200


def test_a_login_form_giving_the_username_twice_is_refused_rather_than_read_as_the_last() -> None:
    UserFactory.create(username="maya")
    client = APIClient()

    twice = client.post(
        "/api/auth/token/",
        "username=someone-else&username=maya&password=correct+horse+battery",
        content_type="application/x-www-form-urlencoded",
    )

    assert twice.status_code == 400
    assert twice.json()["errors"] == {"username": ["Give this field once."]}
    assert "access" not in twice.json()


def test_logout_counts_against_the_general_rate_as_a_refresh_does(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "read": "2/min"}
    client = APIClient(REMOTE_ADDR="203.0.113.31")

    codes = [
        client.post("/api/auth/token/refresh/", {"refresh": "x"}).status_code,
        client.post("/api/auth/logout/", {"refresh": "x"}).status_code,
        client.post("/api/auth/logout/", {"refresh": "x"}).status_code,
    ]

    assert codes == [401, 401, 429]


def test_guest_endpoint_creates_a_customer_and_returns_tokens() -> None:
    client = APIClient()

    response = client.post("/api/auth/guest/")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")

    assert response.status_code == 201
    assert set(response.json()) == {"access", "refresh"}
    created = client.post("/api/conversations/", {}, format="json")
    assert created.status_code == 201
    assert created["Location"] == f"/api/conversations/{created.json()['id']}/"


def test_anonymous_requests_are_refused_with_401() -> None:
    conversation = ConversationFactory.create()

    responses = [
        APIClient().get("/api/conversations/"),
        APIClient().get(f"/api/conversations/{conversation.id}/"),
        APIClient().post(f"/api/conversations/{conversation.id}/messages/", {"content": "hi"}),
    ]

    assert [r.status_code for r in responses] == [401, 401, 401]


def test_a_bad_or_expired_token_gets_the_api_s_one_error_shape() -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")

    response = client.get("/api/conversations/")

    assert response.status_code == 401
    assert response.json() == {
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
    }


def test_a_customer_lists_only_their_own_conversations() -> None:
    mine = ConversationFactory.create()
    ConversationFactory.create()

    body = _client_for(mine.owner).get("/api/conversations/").json()

    assert body["count"] == 1
    assert [c["id"] for c in body["results"]] == [str(mine.id)]


def test_conversations_opened_at_the_same_instant_page_in_one_order() -> None:
    owner = UserFactory.create()
    opened = timezone.now()
    for number in (1, 3, 2):
        ConversationFactory.create(owner=owner, id=uuid.UUID(int=number))
    Conversation.objects.filter(owner=owner).update(created_at=opened)
    client = _client_for(owner)

    pages = [
        client.get(f"/api/conversations/?page_size=1&page={page}").json()["results"]
        for page in (1, 2, 3)
    ]

    assert [row["id"] for [row] in pages] == [str(uuid.UUID(int=n)) for n in (3, 2, 1)]


def test_someone_elses_conversation_answers_404() -> None:
    theirs = ConversationFactory.create()
    client = _client_for(UserFactory.create())

    responses = [
        client.get(f"/api/conversations/{theirs.id}/"),
        client.get(f"/api/conversations/{theirs.id}/messages/"),
        client.post(f"/api/conversations/{theirs.id}/messages/", {"content": "hi"}),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404]
    assert theirs.messages.count() == 0


def test_ids_written_in_upper_case_find_the_same_conversation_and_run() -> None:
    conversation = ConversationFactory.create()
    asked = MessageFactory.create(conversation=conversation)
    run = AgentRunFactory.create(conversation=conversation, user_message=asked)
    client = _client_for(conversation.owner)

    responses = [
        client.get(f"/api/conversations/{str(conversation.id).upper()}/"),
        client.get(f"/api/conversations/{str(conversation.id).upper()}/messages/"),
        client.get(f"/api/runs/{str(run.id).upper()}/"),
    ]

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert responses[0].json()["id"] == str(conversation.id)
    assert responses[2].json()["id"] == str(run.id)


def test_posting_a_message_returns_202_with_the_message_and_a_queued_run() -> None:
    conversation = ConversationFactory.create()

    response = _client_for(conversation.owner).post(
        f"/api/conversations/{conversation.id}/messages/", {"content": "Any heather honey?"}
    )

    body = response.json()
    assert response.status_code == 202
    assert body["message"]["role"] == "user"
    assert body["message"]["content"] == "Any heather honey?"
    assert body["run"]["status"] == "queued"
    assert AgentRun.objects.get(pk=body["run"]["id"]).user_message_id == body["message"]["id"]
    assert response["Location"] == f"/api/runs/{body['run']['id']}/"


@pytest.mark.parametrize(
    "content",
    [
        "   ",
        "\u200b",
        "\u200b \u2060\n\ufeff",
        "\u0301\u0308 \u0301",  # accents on nothing: combining marks alone
        "\x07\x1b",  # controls
    ],
)
def test_a_message_with_nothing_to_read_is_refused_and_nothing_is_stored(content: str) -> None:
    conversation = ConversationFactory.create()

    response = _client_for(conversation.owner).post(
        f"/api/conversations/{conversation.id}/messages/", {"content": content}, format="json"
    )

    assert response.status_code == 400
    # The same answer whether the serializer or the service found it blank.
    assert response.json() == {
        "detail": "Invalid input.",
        "code": "invalid",
        "errors": {"content": ["This field may not be blank."]},
        "error_codes": {"content": ["blank"]},
    }
    assert Message.objects.count() == 0


@pytest.mark.parametrize(
    "content",
    [
        "\U0001fa77",  # a pink heart: Unicode 15, newer than Python 3.11's tables
        "\U0001fabf \U0001face",  # a goose and a moose, Unicode 15 as well
        "\ue000",  # private use: a font may draw it
    ],
)
def test_a_message_of_characters_this_python_does_not_know_is_posted(content: str) -> None:
    conversation = ConversationFactory.create()

    response = _client_for(conversation.owner).post(
        f"/api/conversations/{conversation.id}/messages/", {"content": content}, format="json"
    )

    assert response.status_code == 202
    assert Message.objects.get().content == content


@pytest.mark.parametrize("content", [123, 1.5, True, ["Hello"], {"text": "Hello"}, None])
def test_a_message_whose_content_is_not_a_string_is_refused(content: object) -> None:
    conversation = ConversationFactory.create()

    response = _client_for(conversation.owner).post(
        f"/api/conversations/{conversation.id}/messages/", {"content": content}, format="json"
    )

    assert response.status_code == 400
    assert "content" in response.json()["errors"]
    assert Message.objects.count() == 0


def test_a_form_giving_the_message_twice_is_refused_rather_than_posting_the_last() -> None:
    conversation = ConversationFactory.create()

    response = _client_for(conversation.owner).post(
        f"/api/conversations/{conversation.id}/messages/",
        "content=first&content=second",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {"content": ["Give this field once."]}
    assert response.json()["error_codes"] == {"content": ["given_twice"]}
    assert Message.objects.count() == 0


def test_a_message_over_4000_characters_is_refused_and_nothing_is_stored() -> None:
    conversation = ConversationFactory.create()

    response = _client_for(conversation.owner).post(
        f"/api/conversations/{conversation.id}/messages/", {"content": "x" * 4001}
    )

    assert response.status_code == 400
    assert "content" in response.json()["errors"]
    assert Message.objects.count() == 0
    assert AgentRun.objects.count() == 0


def test_a_repeated_idempotency_key_returns_the_same_message_and_run() -> None:
    conversation = ConversationFactory.create()
    client = _client_for(conversation.owner)
    url = f"/api/conversations/{conversation.id}/messages/"

    first = client.post(url, {"content": "Hello"}, HTTP_IDEMPOTENCY_KEY="key-1").json()
    second = client.post(url, {"content": "Hello"}, HTTP_IDEMPOTENCY_KEY="key-1").json()

    assert second["message"]["id"] == first["message"]["id"]
    assert second["run"]["id"] == first["run"]["id"]
    assert Message.objects.count() == 1
    assert AgentRun.objects.count() == 1


def test_a_reused_idempotency_key_with_other_content_is_refused_and_nothing_is_stored() -> None:
    conversation = ConversationFactory.create()
    client = _client_for(conversation.owner)
    url = f"/api/conversations/{conversation.id}/messages/"
    client.post(url, {"content": "Hello"}, HTTP_IDEMPOTENCY_KEY="key-1")

    reused = client.post(url, {"content": "Any heather honey?"}, HTTP_IDEMPOTENCY_KEY="key-1")

    assert reused.status_code == 422
    assert "Idempotency-Key" in reused.json()["errors"]
    assert "different message" in reused.json()["detail"]
    assert list(Message.objects.values_list("content", flat=True)) == ["Hello"]
    assert AgentRun.objects.count() == 1


def test_an_idempotency_key_header_sent_twice_is_refused_rather_than_joined() -> None:
    conversation = ConversationFactory.create()
    url = f"/api/conversations/{conversation.id}/messages/"

    # What the server makes of "Idempotency-Key: k1" and "Idempotency-Key: k2" in one request.
    response = _client_for(conversation.owner).post(
        url, {"content": "Hello"}, HTTP_IDEMPOTENCY_KEY="k1,k2"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {"Idempotency-Key": ["Send one key, once, without commas."]}
    assert Message.objects.count() == 0


def test_a_retry_after_the_conversation_closed_still_gets_the_original_answer() -> None:
    conversation = ConversationFactory.create()
    client = _client_for(conversation.owner)
    url = f"/api/conversations/{conversation.id}/messages/"
    first = client.post(url, {"content": "Hello"}, HTTP_IDEMPOTENCY_KEY="key-1").json()
    Conversation.objects.filter(pk=conversation.pk).update(status="closed")

    retry = client.post(url, {"content": "Hello"}, HTTP_IDEMPOTENCY_KEY="key-1")
    new = client.post(url, {"content": "Hello again"}, HTTP_IDEMPOTENCY_KEY="key-2")

    assert retry.status_code == 202
    assert retry.json()["message"]["id"] == first["message"]["id"]
    assert new.status_code == 409
    assert Message.objects.count() == 1


def test_messages_after_an_id_are_listed_in_order() -> None:
    conversation = ConversationFactory.create()
    first, second, third = MessageFactory.create_batch(3, conversation=conversation)

    body = (
        _client_for(conversation.owner)
        .get(f"/api/conversations/{conversation.id}/messages/?after={first.id}")
        .json()
    )

    assert [m["id"] for m in body["results"]] == [second.id, third.id]


def test_the_message_list_reads_of_each_answering_run_only_what_it_shows() -> None:
    conversation = ConversationFactory.create()
    question = MessageFactory.create(conversation=conversation)
    run = AgentRunFactory.create(
        conversation=conversation,
        user_message=question,
        tool_calls=[{"name": "search_products", "args": {"query": "honey " * 500}}],
    )
    client = _client_for(conversation.owner)

    with CaptureQueriesContext(connection) as queries:
        body = client.get(f"/api/conversations/{conversation.id}/messages/").json()

    assert body["results"][0]["answering_run"] == {"id": str(run.id), "status": "queued"}
    statements = [q["sql"] for q in queries.captured_queries]
    assert any('JOIN "agents_agentrun"' in sql for sql in statements)
    assert not any('FROM "agents_agentrun"' in sql for sql in statements)  # none per message
    assert not any('"agents_agentrun"."tool_calls"' in sql for sql in statements)
    assert not any('"agents_agentrun"."node_sequence"' in sql for sql in statements)


@pytest.mark.parametrize("after", ["1_0", "\u0661", "1.0"])
def test_messages_after_a_number_not_written_in_ascii_digits_is_refused(after: str) -> None:
    conversation = ConversationFactory.create()
    MessageFactory.create(conversation=conversation)

    response = _client_for(conversation.owner).get(
        f"/api/conversations/{conversation.id}/messages/", {"after": after}
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {"after": ["A valid integer is required."]}


def test_messages_after_given_twice_is_refused() -> None:
    conversation = ConversationFactory.create()

    response = _client_for(conversation.owner).get(
        f"/api/conversations/{conversation.id}/messages/", {"after": ["1", "2"]}
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {"after": ["Give this parameter once."]}


def test_a_customers_message_is_listed_with_the_run_answering_it() -> None:
    conversation = ConversationFactory.create()
    asked = MessageFactory.create(conversation=conversation)
    run = AgentRunFactory.create(conversation=conversation, user_message=asked, status="running")
    MessageFactory.create(conversation=conversation, role="staff", content="Sam here.")

    body = _client_for(conversation.owner).get(f"/api/conversations/{conversation.id}/messages/")

    listed = body.json()["results"]
    assert listed[0]["answering_run"] == {"id": str(run.id), "status": "running"}
    assert listed[1]["answering_run"] is None


def test_a_conversation_with_staff_gets_no_run() -> None:
    conversation = ConversationFactory.create(status=Conversation.Status.NEEDS_HUMAN)

    response = _client_for(conversation.owner).post(
        f"/api/conversations/{conversation.id}/messages/", {"content": "Still there?"}
    )

    body = response.json()
    assert body["run"] is None
    assert "Location" not in response
    assert conversation.messages.get().content == "Still there?"


def test_protected_fields_in_a_message_post_are_refused_and_nothing_is_stored() -> None:
    conversation = ConversationFactory.create()

    response = _client_for(conversation.owner).post(
        f"/api/conversations/{conversation.id}/messages/",
        {"content": "Hi", "role": "staff", "conversation": str(uuid.uuid4()), "agent": "sales"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "role": ["This field cannot be set."],
        "conversation": ["This field cannot be set."],
        "agent": ["This field cannot be set."],
    }
    assert conversation.messages.count() == 0


def test_a_message_with_a_misspelt_field_is_refused_and_nothing_is_stored() -> None:
    conversation = ConversationFactory.create()

    response = _client_for(conversation.owner).post(
        f"/api/conversations/{conversation.id}/messages/",
        {"content": "Hi", "idempotency_key": "key-1"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Invalid input.",
        "code": "invalid",
        "errors": {"idempotency_key": ["Unknown field."]},
        "error_codes": {"idempotency_key": ["unknown_field"]},
    }
    assert Message.objects.count() == 0
    assert AgentRun.objects.count() == 0


def test_a_new_conversation_with_a_misspelt_field_is_refused() -> None:
    client = _client_for(UserFactory.create())

    response = client.post("/api/conversations/", {"titel": "Gifts"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"titel": ["Unknown field."]}
    assert Conversation.objects.count() == 0


def test_someone_elses_run_answers_404_and_cannot_be_cancelled() -> None:
    conversation = ConversationFactory.create()
    run = AgentRunFactory.create(conversation=conversation)
    client = _client_for(UserFactory.create())

    responses = [client.get(f"/api/runs/{run.id}/"), client.post(f"/api/runs/{run.id}/cancel/")]

    assert [r.status_code for r in responses] == [404, 404]
    assert AgentRun.objects.get(pk=run.pk).status == "queued"


def test_a_queued_run_can_be_cancelled_by_its_owner() -> None:
    conversation = ConversationFactory.create()
    run = AgentRunFactory.create(conversation=conversation)

    response = _client_for(conversation.owner).post(f"/api/runs/{run.id}/cancel/")
    again = _client_for(conversation.owner).post(f"/api/runs/{run.id}/cancel/")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert again.status_code == 409


@pytest.mark.parametrize("status", ["active", "needs_human"])
def test_a_customer_closes_their_conversation_and_it_takes_no_more_messages(status: str) -> None:
    conversation = ConversationFactory.create(status=status)
    client = _client_for(conversation.owner)
    url = f"/api/conversations/{conversation.id}/"

    closed = client.post(f"{url}close/")
    again = client.post(f"{url}close/")
    refused = client.post(f"{url}messages/", {"content": "Hello?"}, format="json")

    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"
    assert again.status_code == 200
    assert again.json() == closed.json()
    assert refused.status_code == 409
    assert refused.json()["code"] == "conversation_closed"
    assert Conversation.objects.get(pk=conversation.pk).status == "closed"


def test_closing_a_conversation_cancels_its_runs_not_yet_finished() -> None:
    conversation = ConversationFactory.create()
    runs = {
        status: AgentRunFactory.create(conversation=conversation, status=status)
        for status in ("succeeded", "running", "queued")
    }

    _client_for(conversation.owner).post(f"/api/conversations/{conversation.id}/close/")

    statuses = {before: AgentRun.objects.get(pk=run.pk).status for before, run in runs.items()}
    assert statuses == {"succeeded": "succeeded", "running": "cancelled", "queued": "cancelled"}
    assert AgentRun.objects.get(pk=runs["queued"].pk).finished_at is not None


def _conversation_with_a_rated_reply() -> Conversation:
    conversation = ConversationFactory.create()
    question = MessageFactory.create(conversation=conversation, content="Is it raw?")
    run = AgentRunFactory.create(
        conversation=conversation, user_message=question, status="succeeded"
    )
    reply = MessageFactory.create(
        conversation=conversation, role=Message.Role.ASSISTANT, run=run, content="It is."
    )
    ReplyFeedbackFactory.create(reply=reply, rating=ReplyFeedback.Rating.HELPFUL)
    return conversation


def test_a_customer_deletes_their_conversation_with_its_messages_runs_and_feedback() -> None:
    conversation = _conversation_with_a_rated_reply()
    kept = ConversationFactory.create(owner=conversation.owner)
    MessageFactory.create(conversation=kept)
    client = _client_for(conversation.owner)
    url = f"/api/conversations/{conversation.id}/"

    deleted = client.delete(url)
    again = client.delete(url)

    assert deleted.status_code == 204
    assert client.get(url).status_code == 404
    assert again.status_code == 404
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(conversation_id=conversation.pk).exists()
    assert not AgentRun.objects.filter(conversation_id=conversation.pk).exists()
    assert not ReplyFeedback.objects.exists()
    listed = client.get("/api/conversations/").json()["results"]
    assert [each["id"] for each in listed] == [str(kept.id)]
    assert Message.objects.filter(conversation=kept).count() == 1


def _conversation_with_a_started_run(**run_state: Any) -> Conversation:
    conversation = _conversation_with_a_rated_reply()
    question = MessageFactory.create(conversation=conversation, content="And the price?")
    AgentRunFactory.create(
        conversation=conversation, user_message=question, started_at=timezone.now(), **run_state
    )
    return conversation


@pytest.mark.parametrize(
    "run_state",
    [
        {"status": "running", "deliveries": 1},
        {"status": "cancelled", "deliveries": 1},  # cancelled mid-turn
    ],
)
def test_a_conversation_is_not_deleted_while_a_worker_writes_its_reply(run_state: dict) -> None:
    conversation = _conversation_with_a_started_run(**run_state)

    response = _client_for(conversation.owner).delete(f"/api/conversations/{conversation.id}/")

    assert response.status_code == 409
    assert response.json()["code"] == "reply_in_progress"
    assert Conversation.objects.filter(pk=conversation.pk).exists()
    assert Message.objects.filter(conversation_id=conversation.pk).count() == 3
    assert ReplyFeedback.objects.exists()


def test_a_conversation_whose_run_was_queued_again_after_a_lost_delivery_is_deleted() -> None:
    conversation = _conversation_with_a_started_run(status="queued", deliveries=1)

    response = _client_for(conversation.owner).delete(f"/api/conversations/{conversation.id}/")

    assert response.status_code == 204
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(conversation_id=conversation.pk).exists()
    assert not ReplyFeedback.objects.exists()


def test_a_queued_run_of_a_deleted_conversation_finds_nothing_to_run(
    django_capture_on_commit_callbacks,
) -> None:
    conversation = ConversationFactory.create()
    client = _client_for(conversation.owner)
    url = f"/api/conversations/{conversation.id}/"
    posted = client.post(f"{url}messages/", {"content": "Do you ship to Spain?"}, format="json")
    run_id = posted.json()["run"]["id"]

    with django_capture_on_commit_callbacks(execute=True):
        deleted = client.delete(url)
    told = run_events_read(run_id=run_id)
    outcome = agent_run_execute(run_id=run_id)

    assert posted.status_code == 202
    assert deleted.status_code == 204
    # Whoever follows the run (its event stream, a ``?wait``) is told at once.
    assert [(event.type, event.data) for event in told] == [("run.deleted", {"status": "deleted"})]
    assert outcome is None
    assert not AgentRun.objects.exists()
    assert not Message.objects.exists()
