"""Every API error carries a ``code`` a client can branch on, beside the sentence for people."""

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from django.http import Http404
from rest_framework.test import APIClient

from beemanhoney.common.exceptions import DeletedMeanwhile, api_exception_handler, error_body
from conversations.models import Conversation
from tests.conversations.factories import ConversationFactory, UserFactory

if TYPE_CHECKING:
    from rest_framework.response import _MonkeyPatchedResponse as Response

pytestmark = pytest.mark.django_db


def _customer() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory.create())
    return client


def _closed_conversation_message(client: APIClient) -> "Response":
    user = UserFactory.create()
    client.force_authenticate(user)
    conversation = ConversationFactory.create(owner=user, status=Conversation.Status.CLOSED)
    return client.post(
        f"/api/conversations/{conversation.id}/messages/", {"content": "hello"}, format="json"
    )


def _reused_idempotency_key(client: APIClient) -> "Response":
    user = UserFactory.create()
    client.force_authenticate(user)
    conversation = ConversationFactory.create(owner=user)
    url = f"/api/conversations/{conversation.id}/messages/"
    client.post(url, {"content": "hello"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    return client.post(url, {"content": "goodbye"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")


def _customer_message_rated(client: APIClient) -> "Response":
    user = UserFactory.create()
    client.force_authenticate(user)
    conversation = ConversationFactory.create(owner=user)
    message = conversation.messages.create(role="user", content="hello")
    url = f"/api/conversations/{conversation.id}/messages/{message.id}/feedback/"
    return client.put(url, {"rating": "helpful"}, format="json")


def _wrong_password(client: APIClient) -> "Response":
    UserFactory.create(username="maya")
    return client.post("/api/auth/token/", {"username": "maya", "password": "wrong"})


REQUESTS: dict[str, tuple[Callable[[APIClient], "Response"], int, str]] = {
    "anonymous write": (lambda c: c.post("/api/conversations/", {}), 401, "not_authenticated"),
    "customer writing the catalogue": (
        lambda c: _customer().post("/api/categories/", {"name": "Mead"}, format="json"),
        403,
        "permission_denied",
    ),
    "bad filter": (lambda c: c.get("/api/products/?min_price=abc"), 400, "invalid"),
    "unknown product": (lambda c: c.get("/api/products/NO-SUCH-SKU/"), 404, "not_found"),
    "wrong password": (_wrong_password, 401, "no_active_account"),
    "malformed token": (
        lambda c: c.get("/api/conversations/", HTTP_AUTHORIZATION="Bearer not.a.token"),
        401,
        "token_not_valid",
    ),
    "malformed JSON": (
        lambda c: c.post("/api/auth/token/", "{", content_type="application/json"),
        400,
        "parse_error",
    ),
    "unsupported body": (
        lambda c: c.post("/api/auth/token/", "x", content_type="text/plain"),
        415,
        "unsupported_media_type",
    ),
    "closed conversation": (_closed_conversation_message, 409, "conversation_closed"),
    "reused idempotency key": (_reused_idempotency_key, 422, "idempotency_key_reused"),
    "feedback on a customer's message": (_customer_message_rated, 400, "not_a_reply"),
}


@pytest.mark.parametrize("name", REQUESTS)
def test_an_api_error_carries_a_code_naming_what_went_wrong(name: str) -> None:
    request, status, code = REQUESTS[name]

    response = request(APIClient())

    assert response.status_code == status
    assert response.json()["code"] == code
    assert response.json()["detail"]


def test_a_field_error_keeps_its_fields_beside_the_code() -> None:
    response = APIClient().get("/api/products/?min_price=abc")

    assert set(response.json()) == {"detail", "code", "errors", "error_codes"}
    assert response.json()["errors"] == {"min_price": ["A valid number is required."]}
    assert response.json()["error_codes"] == {"min_price": ["invalid"]}


def test_an_error_no_field_is_at_fault_for_has_no_errors_key() -> None:
    body = _closed_conversation_message(APIClient()).json()

    assert body == {"detail": "This conversation is closed.", "code": "conversation_closed"}


def test_a_rate_limit_is_told_apart_from_other_429s_by_its_code(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "read": "1/min"}
    client = APIClient(REMOTE_ADDR="203.0.113.41")

    client.get("/api/categories/")
    limited = client.get("/api/categories/")

    assert limited.status_code == 429
    assert limited.json()["code"] == "throttled"
    assert "Retry-After" in limited


def test_each_field_s_messages_have_their_codes_in_their_places() -> None:
    twice = APIClient().get("/api/products/?category=a&category=b&min_price=abc")

    assert twice.json()["errors"] == {
        "category": ["Give this parameter once."],
        "min_price": ["A valid number is required."],
    }
    assert twice.json()["error_codes"] == {"category": ["given_twice"], "min_price": ["invalid"]}


def test_a_business_rule_refusing_a_field_gives_the_field_its_code() -> None:
    body = error_body("Closed.", "conversation_closed", {"content": ["Closed."]})

    assert body["error_codes"] == {"content": ["conversation_closed"]}


def test_a_row_deleted_meanwhile_answers_as_a_row_that_is_not_there() -> None:
    deleted = api_exception_handler(DeletedMeanwhile(), {})
    missing = api_exception_handler(Http404(), {})

    assert deleted is not None
    assert missing is not None
    assert (deleted.status_code, deleted.data) == (missing.status_code, missing.data)
    assert deleted.status_code == 404
