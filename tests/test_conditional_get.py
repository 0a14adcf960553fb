"""A client that sends back a GET's ETag gets 304 and no body while the answer is the same."""

import pytest
from rest_framework.test import APIClient

from tests.catalog.factories import ProductFactory
from tests.conversations.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


def test_an_unchanged_product_is_a_304_without_a_body_and_a_changed_one_a_200() -> None:
    product = ProductFactory.create(sku="BH-1", stock=4)
    client = APIClient()
    first = client.get("/api/products/BH-1/")

    unchanged = client.get("/api/products/BH-1/", HTTP_IF_NONE_MATCH=first["ETag"])
    product.stock = 3
    product.save(update_fields=["stock"])
    changed = client.get("/api/products/BH-1/", HTTP_IF_NONE_MATCH=first["ETag"])

    assert first.status_code == 200
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert changed.status_code == 200
    assert changed.json()["stock"] == 3
    assert changed["ETag"] != first["ETag"]


def test_a_conversation_s_messages_are_revalidated_as_its_owner_reads_them() -> None:
    conversation = ConversationFactory.create()
    client = APIClient()
    client.force_authenticate(conversation.owner)
    url = f"/api/conversations/{conversation.id}/messages/"
    first = client.get(url)

    unchanged = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    MessageFactory.create(conversation=conversation, author=conversation.owner, content="Hi")
    changed = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])

    assert unchanged.status_code == 304
    assert changed.status_code == 200
    assert [message["content"] for message in changed.json()["results"]] == ["Hi"]


@pytest.mark.parametrize("url", ["/api/products/", "/api/categories/", "/api/products/BH-1/"])
def test_a_head_answers_the_get_s_etag_and_a_304_for_it(url: str) -> None:
    ProductFactory.create(sku="BH-1")
    client = APIClient()
    got = client.get(url)

    head = client.head(url)
    unchanged = client.head(url, HTTP_IF_NONE_MATCH=got["ETag"])

    assert (head.status_code, head.get("ETag")) == (200, got["ETag"])
    assert (unchanged.status_code, unchanged.content) == (304, b"")


def test_a_head_whose_if_match_names_another_etag_is_the_api_s_412() -> None:
    ProductFactory.create(sku="BH-1")

    response = APIClient().head("/api/products/BH-1/", HTTP_IF_MATCH='"another"')

    assert (response.status_code, response["Content-Type"]) == (412, "application/json")
