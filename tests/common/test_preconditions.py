"""A PATCH sending back its GET's ETag in If-Match changes the row only if nobody did since."""

import pytest
from rest_framework.test import APIClient

from catalog.models import Category, KnowledgeArticle, Product
from tests.catalog.factories import CatalogStaffFactory, KnowledgeArticleFactory, ProductFactory

pytestmark = pytest.mark.django_db

# Each catalogue row a PATCH changes: its URL, a change to make, and one made meanwhile.
ROWS = [
    ("/api/products/BH-1/", {"price": "12.34"}, lambda: Product.objects.update(stock=3)),
    (
        "/api/categories/raw-honey/",
        {"name": "Raw"},
        lambda: Category.objects.update(description="Unheated."),
    ),
    (
        "/api/knowledge/storing-honey/",
        {"title": "Storing it"},
        lambda: KnowledgeArticle.objects.update(body="Keep it in a cupboard."),
    ),
]


@pytest.fixture
def staff_client() -> APIClient:
    ProductFactory.create(sku="BH-1", stock=4, category__slug="raw-honey")
    KnowledgeArticleFactory.create(slug="storing-honey", body="Keep it dry.")
    client = APIClient()
    client.force_authenticate(user=CatalogStaffFactory.create())
    return client


@pytest.mark.parametrize(("url", "change"), [(url, change) for url, change, _ in ROWS])
def test_a_change_sent_with_the_etag_read_is_made_and_answers_the_new_one(
    staff_client: APIClient, url: str, change: dict
) -> None:
    read = staff_client.get(url)

    changed = staff_client.patch(url, change, format="json", HTTP_IF_MATCH=read["ETag"])

    assert changed.status_code == 200
    assert changed["ETag"] != read["ETag"]
    assert changed["ETag"] == staff_client.get(url)["ETag"]


@pytest.mark.parametrize("url", [url for url, _, _ in ROWS])
def test_an_empty_change_changes_nothing_and_keeps_the_etag(
    staff_client: APIClient, url: str
) -> None:
    read = staff_client.get(url)

    unchanged = staff_client.patch(url, {}, format="json", HTTP_IF_MATCH=read["ETag"])

    assert unchanged.status_code == 200
    assert unchanged.json() == read.json()
    assert unchanged["ETag"] == read["ETag"]


@pytest.mark.parametrize(("url", "change", "meanwhile"), ROWS)
def test_a_change_to_a_row_changed_since_it_was_read_is_refused_and_nothing_written(
    staff_client: APIClient, url: str, change: dict, meanwhile
) -> None:
    read = staff_client.get(url)
    meanwhile()
    before = staff_client.get(url).json()

    refused = staff_client.patch(url, change, format="json", HTTP_IF_MATCH=read["ETag"])

    assert refused.status_code == 412
    assert refused.json()["code"] == "precondition_failed"
    assert staff_client.get(url).json() == before


def test_a_weak_etag_never_matches_and_a_star_or_no_if_match_always_does(
    staff_client: APIClient,
) -> None:
    url = "/api/products/BH-1/"
    etag = staff_client.get(url)["ETag"]

    weak = staff_client.patch(url, {"stock": 5}, format="json", HTTP_IF_MATCH=f"W/{etag}")
    listed = staff_client.patch(url, {"stock": 6}, format="json", HTTP_IF_MATCH=f'"x", {etag}')
    star = staff_client.patch(url, {"stock": 7}, format="json", HTTP_IF_MATCH="*")
    unconditional = staff_client.patch(url, {"stock": 8}, format="json")

    statuses = [r.status_code for r in (weak, listed, star, unconditional)]
    assert statuses == [412, 200, 200, 200]
    assert Product.objects.get().stock == 8


def test_a_conditional_change_to_no_such_row_is_a_404(staff_client: APIClient) -> None:
    response = staff_client.patch(
        "/api/products/BH-NONE/", {"stock": 1}, format="json", HTTP_IF_MATCH="*"
    )

    assert response.status_code == 404


def test_an_unchanged_row_read_again_with_its_etag_is_a_304(staff_client: APIClient) -> None:
    first = staff_client.get("/api/categories/raw-honey/")

    again = staff_client.get("/api/categories/raw-honey/", HTTP_IF_NONE_MATCH=first["ETag"])

    assert (again.status_code, again.content) == (304, b"")


def test_a_read_whose_if_match_names_another_etag_is_a_412_in_the_api_s_error_shape(
    staff_client: APIClient,
) -> None:
    refused = staff_client.get("/api/categories/raw-honey/", HTTP_IF_MATCH='"another"')

    assert refused.status_code == 412
    assert refused["Content-Type"] == "application/json"
    assert refused.json()["code"] == "precondition_failed"
