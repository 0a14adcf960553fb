"""An API path without its trailing slash: redirected keeping the method, and in JSON."""

import pytest
from rest_framework.test import APIClient

from tests.catalog.factories import ProductFactory
from tests.conversations.factories import ConversationFactory


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True], ids=["debug off", "debug on"])
def test_a_post_without_the_trailing_slash_is_redirected_keeping_its_method(
    settings, debug: bool
) -> None:
    settings.DEBUG = debug
    conversation = ConversationFactory.create()
    client = APIClient()
    client.force_authenticate(conversation.owner)
    path = f"/api/conversations/{conversation.id}/messages"

    redirect = client.post(path, {"content": "hello"}, format="json")
    posted = client.post(redirect["Location"], {"content": "hello"}, format="json")

    assert redirect.status_code == 308
    assert redirect["Location"] == f"{path}/"
    assert redirect.json() == {
        "detail": f"This URL ends with a slash: {path}/",
        "code": "slash_required",
    }
    assert posted.status_code == 202  # stored, its answer queued


@pytest.mark.django_db
def test_an_api_path_that_is_no_path_with_a_slash_either_is_a_json_404() -> None:
    response = APIClient().get("/api")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


@pytest.mark.django_db
def test_a_format_parameter_is_ignored_as_other_unknown_parameters_are() -> None:
    product = ProductFactory.create()

    response = APIClient().get(f"/api/products/{product.sku}/?format=xml")

    assert response.status_code == 200
    assert response.json()["sku"] == product.sku
