import pytest
from rest_framework.test import APIClient

from beemanhoney.common.serializers import GIVEN_MORE_THAN_ONCE
from tests.catalog.factories import CategoryFactory, ProductFactory
from tests.conversations.factories import ConversationFactory

pytestmark = pytest.mark.django_db

NOT_A_WHOLE_NUMBER = "A valid integer is required."
BELOW_ONE = "Ensure this value is greater than or equal to 1."


@pytest.mark.parametrize(
    ("page_size", "message"),
    [("0", BELOW_ONE), ("-5", BELOW_ONE), ("ten", NOT_A_WHOLE_NUMBER), ("5.0", NOT_A_WHOLE_NUMBER)],
)
def test_a_page_size_that_is_no_whole_number_from_one_is_refused_naming_it(
    page_size: str, message: str
) -> None:
    CategoryFactory.create_batch(3)

    response = APIClient().get("/api/categories/", {"page_size": page_size})

    assert response.status_code == 400
    assert response.json()["errors"] == {"page_size": [message]}


def test_an_empty_page_size_means_the_default() -> None:
    CategoryFactory.create_batch(21)

    body = APIClient().get("/api/categories/", {"page_size": ""}).json()

    assert len(body["results"]) == 20


def test_a_page_size_pages_a_search() -> None:
    ProductFactory.create_batch(3, category=CategoryFactory.create())

    ok = APIClient().get("/api/products/", {"q": "honey", "page_size": "2"})
    refused = APIClient().get("/api/products/", {"q": "honey", "page_size": "0"})

    assert len(ok.json()["results"]) == 2
    assert refused.status_code == 400
    assert refused.json()["errors"] == {"page_size": [BELOW_ONE]}


@pytest.mark.parametrize("name", ["page", "page_size"])
def test_a_paging_parameter_given_twice_is_refused_naming_it(name: str) -> None:
    conversation = ConversationFactory.create()
    client = APIClient()
    client.force_authenticate(conversation.owner)

    response = client.get("/api/conversations/", {name: ["1", "2"]})

    assert response.status_code == 400
    assert response.json()["errors"] == {name: [GIVEN_MORE_THAN_ONCE]}


@pytest.mark.parametrize("page", ["\uff11", " 1 ", "1_0", "ten"])
def test_a_page_not_written_as_a_plain_number_is_no_page(page: str) -> None:
    CategoryFactory.create_batch(3)

    response = APIClient().get("/api/categories/", {"page": page})

    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid page.", "code": "not_found"}


@pytest.mark.parametrize("page", ["1", "+1", "last"])
def test_a_page_written_as_a_plain_number_or_last_is_that_page(page: str) -> None:
    CategoryFactory.create_batch(3)

    response = APIClient().get("/api/categories/", {"page": page})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 3
