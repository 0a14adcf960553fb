"""Who may do what to the API's routes, and what a method no route answers is told."""

import pytest
from rest_framework.test import APIClient

from tests.catalog.factories import CatalogStaffFactory, ProductFactory
from tests.conversations.factories import ConversationFactory, UserFactory

pytestmark = pytest.mark.django_db

CALLERS = ["anonymous", "customer", "staff"]


def _as(caller: str) -> APIClient:
    client = APIClient()
    users = {"customer": UserFactory.create, "staff": CatalogStaffFactory.create}
    if caller in users:
        client.force_authenticate(users[caller]())
    return client


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("put", "/api/products/{sku}/"),
        ("delete", "/api/products/{sku}/"),
        ("put", "/api/products/"),
        ("trace", "/api/products/"),
        ("delete", "/api/conversations/"),
        ("patch", "/api/conversations/{conversation}/"),
    ],
)
def test_a_method_a_route_does_not_answer_is_a_405_whoever_asks(
    caller: str, method: str, route: str
) -> None:
    path = route.format(
        sku=ProductFactory.create().sku, conversation=ConversationFactory.create().id
    )

    response = _as(caller).generic(method.upper(), path)

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert method.upper() not in response["Allow"]
