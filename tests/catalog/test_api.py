from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.serializers import Serializer
from rest_framework.test import APIClient

from catalog import services
from catalog.api.views import ProductOutputSerializer, product_output
from catalog.models import Category, KnowledgeArticle, Product, slug_of
from catalog.services import CatalogImportError, embeddings_refresh, knowledge_import
from tests.catalog.factories import (
    CatalogStaffFactory,
    CategoryFactory,
    KnowledgeArticleFactory,
    ProductFactory,
    UserFactory,
)
from tests.support.transactions import saved_meanwhile

PRODUCTS_URL = "/api/products/"


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def staff_client() -> APIClient:
    client = APIClient()
    client.force_authenticate(user=CatalogStaffFactory.create())
    return client


def new_product_payload(**overrides: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "sku": "BH-NEW-001",
        "name": "Linden Blossom Honey 340g",
        "category": CategoryFactory.create(slug="raw-honey").slug,
        "price": "10.95",
        "stock": 12,
        "tags": ["raw", "light"],
    }
    payload.update(overrides)
    return payload


def field_over_every_page(client: APIClient, url: str, field: str) -> list[str]:
    """``field`` of every result, page by page (5 a page) until there is no next page."""
    seen: list[str] = []
    page = 1
    while True:
        body = client.get(url, {"page_size": 5, "page": page}).json()
        seen += [result[field] for result in body["results"]]
        if body["next"] is None:
            return seen
        page += 1


# --- GET /api/products/ -----------------------------------------------------------------------


@pytest.mark.django_db
def test_product_list_is_paginated(api_client: APIClient) -> None:
    ProductFactory.create_batch(3)

    response = api_client.get(PRODUCTS_URL, {"page_size": 2})

    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert "page=2" in body["next"]
    assert body["previous"] is None


@pytest.mark.django_db
def test_paging_through_products_that_share_a_name_shows_each_once(api_client: APIClient) -> None:
    # Names repeat in a real catalogue (one honey in several sizes under one name, say). Ordered
    # by name alone, PostgreSQL may break the ties differently for each page's LIMIT / OFFSET.
    category = CategoryFactory.create()
    skus = {ProductFactory.create(name="Heather Honey", category=category).sku for _ in range(60)}

    seen = field_over_every_page(api_client, PRODUCTS_URL, "sku")

    assert sorted(seen) == sorted(skus)


@pytest.mark.django_db
def test_product_list_returns_each_products_public_fields(api_client: APIClient) -> None:
    product = ProductFactory.create(
        sku="BH-RAW-004",
        name="Acacia Raw Honey 500g",
        slug="acacia-raw-honey-500g",
        category=CategoryFactory.create(slug="raw-honey"),
        price=Decimal("11.50"),
        weight_grams=500,
        stock=0,
        tags=["raw", "mild"],
        origin="Transylvania, Romania",
        floral_source="Acacia",
        description="Pale and runny.",
    )

    response = api_client.get(PRODUCTS_URL)

    assert response.json()["results"] == [
        {
            "sku": product.sku,
            "slug": "acacia-raw-honey-500g",
            "name": "Acacia Raw Honey 500g",
            "category": "raw-honey",
            "price": "11.50",
            "currency": "GBP",
            "weight_grams": 500,
            "stock": 0,
            "in_stock": False,
            "tags": ["raw", "mild"],
            "origin": "Transylvania, Romania",
            "floral_source": "Acacia",
            "description": "Pale and runny.",
        }
    ]


@pytest.mark.django_db
def test_the_product_output_is_what_drf_makes_of_the_declared_fields() -> None:
    products = [
        ProductFactory.create(price=Decimal("7"), tags=[], stock=0, origin=""),
        ProductFactory.create(
            price=Decimal("12.5"), tags=["raw", "local"], description="Crème brûlée"
        ),
    ]
    serializer = ProductOutputSerializer()

    by_hand = [product_output(product) for product in products]

    by_drf = [Serializer.to_representation(serializer, product) for product in products]
    assert [serializer.to_representation(product) for product in products] == by_hand
    assert by_hand == by_drf
    assert by_hand[0]["price"] == "7.00"


@pytest.mark.django_db
def test_product_list_leaves_out_inactive_products(api_client: APIClient) -> None:
    active = ProductFactory.create()
    ProductFactory.create(is_active=False)

    response = api_client.get(PRODUCTS_URL)

    assert [row["sku"] for row in response.json()["results"]] == [active.sku]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"category": "gift-sets"}, {"gift"}),
        ({"min_price": "10", "max_price": "20"}, {"raw"}),
        ({"in_stock": "false"}, {"sold-out"}),
        ({"in_stock": "true"}, {"raw", "gift"}),
        ({"tags": "Spicy, HOT"}, {"sold-out"}),
        ({"tags": ["spicy", "HOT"]}, {"sold-out"}),
        ({"tags": ["spicy,pizza", "hot"]}, {"sold-out"}),
        ({"tags": ["spicy", "raw"]}, set()),
    ],
)
def test_product_list_applies_the_filters(
    api_client: APIClient, params: dict[str, str | list[str]], expected: set[str]
) -> None:
    ProductFactory.create(sku="raw", price=Decimal("12"), stock=5)
    ProductFactory.create(
        sku="gift", price=Decimal("40"), category=CategoryFactory.create(slug="gift-sets")
    )
    ProductFactory.create(
        sku="sold-out", price=Decimal("8"), stock=0, tags=["spicy", "hot", "pizza"]
    )

    response = api_client.get(PRODUCTS_URL, params)

    assert {row["sku"] for row in response.json()["results"]} == expected


@pytest.mark.django_db
def test_price_filters_read_zeros_past_the_cents_as_the_price_they_write(
    api_client: APIClient,
) -> None:
    ProductFactory.create(sku="under", price=Decimal("12.49"))
    ProductFactory.create(sku="exact", price=Decimal("12.50"))
    ProductFactory.create(sku="free", price=Decimal("0"))

    exact = api_client.get(PRODUCTS_URL, {"min_price": "12.500", "max_price": "12.5000"})
    free = api_client.get(PRODUCTS_URL, {"max_price": "-0"})

    assert exact.status_code == 200, exact.json()
    assert [row["sku"] for row in exact.json()["results"]] == ["exact"]
    assert [row["sku"] for row in free.json()["results"]] == ["free"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "first"),
    [("candles for the dinner table", "candle"), ("spicy drizzle for pizza", "hot-honey")],
)
def test_product_list_with_q_orders_by_relevance(
    api_client: APIClient, query: str, first: str
) -> None:
    ProductFactory.create(
        sku="candle",
        name="Beeswax Dinner Candles",
        description="Two tall hand-rolled candles that burn slowly with a warm glow.",
    )
    ProductFactory.create(
        sku="hot-honey",
        name="Chilli Hot Honey",
        description="Honey steeped with red chillies; drizzle it over pizza.",
    )
    ProductFactory.create(
        sku="wrap",
        name="Beeswax Food Wrap",
        description="A plastic-free cover for bowls and sandwiches.",
    )
    embeddings_refresh(kind="products")

    response = api_client.get(PRODUCTS_URL, {"q": query})

    assert response.json()["results"][0]["sku"] == first


# sku, name ("beeswax" in lower case once: names sort whatever their case), price, weight
CANDLES = [
    ("dinner-pair", "Beeswax Dinner Candles (pair)", "14.00", 300),
    ("pillar", "beeswax Pillar Candle", "24.00", 900),
    ("tea-lights", "Beeswax Tea Light Candles (12)", "6.50", 180),
    ("votive", "Beeswax Votive Candle", "14.00", 120),
]


def candles(rows: list[tuple[str, str, str, int]]) -> Category:
    category = CategoryFactory.create(slug="candles")
    for sku, name, price, grams in rows:
        ProductFactory.create(
            sku=sku,
            name=name,
            price=Decimal(price),
            weight_grams=grams,
            category=category,
            description="Hand-poured from our own beeswax; burns long and clean.",
        )
    return category


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "skus"),
    [
        ({"q": "beeswax candles under £10"}, ["tea-lights"]),
        ({"q": "beeswax candles over 10 pounds", "max_price": "20"}, ["dinner-pair"]),
        ({"q": "cheapest beeswax candles"}, ["tea-lights", "dinner-pair", "pillar"]),
        ({"q": "the biggest beeswax candle"}, ["pillar", "dinner-pair", "tea-lights"]),
    ],
)
def test_product_list_with_q_keeps_to_the_price_range_and_order_the_query_states(
    api_client: APIClient, params: dict[str, str], skus: list[str]
) -> None:
    candles(CANDLES[:3])
    embeddings_refresh(kind="products")

    response = api_client.get(PRODUCTS_URL, params)

    assert response.status_code == 200
    assert [row["sku"] for row in response.json()["results"]] == skus


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "beeswax candles around £100000000000000000000000000000",
        "beeswax candles £100000000000000000000000000000ish",
        "beeswax candles £100000000000000000000000000000 or so",
    ],
)
def test_product_list_with_q_reads_a_figure_longer_than_any_price_as_no_price(
    api_client: APIClient, query: str
) -> None:
    candles(CANDLES[:3])
    embeddings_refresh(kind="products")

    response = api_client.get(PRODUCTS_URL, {"q": query})

    assert response.status_code == 200
    assert {row["sku"] for row in response.json()["results"]} == {
        "dinner-pair",
        "pillar",
        "tea-lights",
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("ordering", "skus"),
    [
        ("price", ["tea-lights", "dinner-pair", "votive", "pillar"]),
        # Equal prices: the later product first, as one index read backwards gives them.
        ("-price", ["pillar", "votive", "dinner-pair", "tea-lights"]),
        ("name", ["dinner-pair", "pillar", "tea-lights", "votive"]),
        ("-name", ["votive", "tea-lights", "pillar", "dinner-pair"]),
    ],
)
def test_product_list_is_sorted_by_the_ordering_asked_for(
    api_client: APIClient, ordering: str, skus: list[str]
) -> None:
    candles(CANDLES)

    response = api_client.get(PRODUCTS_URL, {"ordering": ordering})

    assert [row["sku"] for row in response.json()["results"]] == skus


SEARCH_FOR_CANDLES = {"q": "beeswax candles"}


def _candles_and_a_wrap_ranked(api_client: APIClient) -> list[str]:
    """The candles and, cheaper than every candle and first by name, a wrap from another
    category (sorted in, it would lead a search for candles); the skus as relevance ranks them."""
    candles(CANDLES)
    ProductFactory.create(sku="wrap", name="A Beeswax Food Wrap", price=Decimal("1.00"))
    embeddings_refresh(kind="products")
    results = api_client.get(PRODUCTS_URL, SEARCH_FOR_CANDLES).json()["results"]
    return [row["sku"] for row in results]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("ordering", "value"),
    [("price", float), ("-price", float), ("name", str.lower), ("-name", str.lower)],
)
def test_search_results_in_the_best_matchs_category_are_sorted_as_asked(
    api_client: APIClient, ordering: str, value: Callable[[str], Any]
) -> None:
    ranked = _candles_and_a_wrap_ranked(api_client)

    response = api_client.get(PRODUCTS_URL, {**SEARCH_FOR_CANDLES, "ordering": ordering})

    rows = response.json()["results"]
    # Another category's product keeps the place relevance gave it.
    assert ranked[0] != "wrap"
    assert [row["sku"] for row in rows].index("wrap") == ranked.index("wrap")
    field = ordering.removeprefix("-")
    values = [value(row[field]) for row in rows if row["sku"] != "wrap"]
    assert values == sorted(values, reverse=ordering.startswith("-"))


@pytest.mark.django_db
def test_search_results_of_one_price_keep_their_relevance_order_when_sorted_by_price(
    api_client: APIClient,
) -> None:
    ranked = _candles_and_a_wrap_ranked(api_client)

    response = api_client.get(PRODUCTS_URL, {**SEARCH_FOR_CANDLES, "ordering": "price"})

    # dinner-pair and votive cost the same.
    tied = [sku for sku in ranked if sku in {"dinner-pair", "votive"}]
    assert [row["sku"] for row in response.json()["results"] if row["sku"] in tied] == tied


@pytest.mark.django_db
def test_paging_through_sorted_search_results_shows_each_once_in_order(
    api_client: APIClient,
) -> None:
    category = candles(CANDLES)
    for number in range(8):
        ProductFactory.create(
            sku=f"extra-{number}",
            name=f"Beeswax Candle No. {number}",
            price=Decimal(f"{number + 1}.00"),
            category=category,
        )
    embeddings_refresh(kind="products")

    skus: list[str] = []
    prices: list[Decimal] = []
    page = 1
    while True:
        params: dict[str, str | int] = {
            "q": "beeswax candles",
            "ordering": "-price",
            "page_size": 5,
            "page": page,
        }
        body = api_client.get(PRODUCTS_URL, params).json()
        skus += [row["sku"] for row in body["results"]]
        prices += [Decimal(row["price"]) for row in body["results"]]
        if body["next"] is None:
            break
        page += 1

    assert len(skus) == len(set(skus)) == 12
    assert prices == sorted(prices, reverse=True)


@pytest.mark.django_db
@pytest.mark.parametrize("params", [{}, {"q": "wildflower honey"}])
def test_a_page_of_products_costs_the_same_statements_for_5_rows_as_for_20(
    api_client: APIClient, params: dict[str, str]
) -> None:
    def statements(rows: int) -> int:
        category = CategoryFactory.create()
        ProductFactory.create_batch(rows, category=category)
        embeddings_refresh(kind="products")
        with CaptureQueriesContext(connection) as queries:
            response = api_client.get(PRODUCTS_URL, {**params, "category": category.slug})
        assert len(response.json()["results"]) == rows
        return len(queries)

    api_client.get(PRODUCTS_URL, params)  # a process's first search also learns its words
    few = statements(5)
    Product.objects.all().delete()

    assert statements(20) == few  # nothing is loaded row by row, e.g. a deferred column


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"min_price": "abc"}, "min_price"),
        ({"min_price": "1e3"}, "min_price"),
        ({"max_price": "-1"}, "max_price"),
        ({"max_price": "1_000"}, "max_price"),
        ({"in_stock": "maybe"}, "in_stock"),
        ({"min_price": "20", "max_price": "10"}, "max_price"),
        ({"category": "bad slug!"}, "category"),
        ({"q": "x" * 301}, "q"),
        ({"ordering": "stock"}, "ordering"),
        ({"ordering": "weight_grams"}, "ordering"),
        ({"q": "candles", "ordering": "relevance"}, "ordering"),
        ({"min_price": ["5", "10"]}, "min_price"),
        ({"q": ["candles", "honey"]}, "q"),
        ({"tags": ["raw", "x" * 401]}, "tags"),
        ({"tags": "raw\x00"}, "tags"),
        ({"tags": "raw," + "x" * 41}, "tags"),
    ],
)
def test_product_list_refuses_bad_filters_naming_the_field(
    api_client: APIClient, params: dict[str, str | list[str]], field: str
) -> None:
    response = api_client.get(PRODUCTS_URL, params)

    body = response.json()
    assert response.status_code == 400
    assert body["detail"] == "Invalid input."
    assert list(body["errors"]) == [field]
    assert [type(message) for message in body["errors"][field]] == [str]


@pytest.mark.django_db
@pytest.mark.parametrize("params", [{}, {"q": "wildflower honey"}])
def test_product_list_refuses_a_tag_longer_than_a_product_holds_not_matching_its_start(
    api_client: APIClient, params: dict[str, str]
) -> None:
    # The filter's SQL casts a tag to the column's 40 characters, which would cut this one.
    ProductFactory.create(name="Wildflower Honey", tags=["x" * 40])
    embeddings_refresh(kind="products")

    longest = api_client.get(PRODUCTS_URL, {**params, "tags": "x" * 40})
    longer = api_client.get(PRODUCTS_URL, {**params, "tags": "x" * 43})

    assert len(longest.json()["results"]) == 1
    assert longer.status_code == 400
    assert longer.json()["errors"] == {"tags": ["Ensure each tag has no more than 40 characters."]}
    assert longer.json()["error_codes"] == {"tags": ["max_length"]}


@pytest.mark.django_db
@pytest.mark.parametrize("params", [{}, {"q": "wildflower honey"}])
def test_product_list_refuses_an_unknown_category(
    api_client: APIClient, params: dict[str, str]
) -> None:
    ProductFactory.create(category=CategoryFactory.create(slug="raw-honey"))

    response = api_client.get(PRODUCTS_URL, {**params, "category": "no-such-thing"})

    assert response.status_code == 400
    assert response.json()["errors"] == {"category": ["No category with this slug."]}


@pytest.mark.django_db
def test_product_list_refuses_a_category_given_twice_rather_than_search_the_last(
    api_client: APIClient,
) -> None:
    CategoryFactory.create(slug="raw-honey")
    CategoryFactory.create(slug="manuka-honey")

    response = api_client.get(PRODUCTS_URL, {"category": ["raw-honey", "manuka-honey"]})

    assert response.status_code == 400
    assert response.json()["errors"] == {"category": ["Give this parameter once."]}


@pytest.mark.django_db
def test_an_empty_category_filter_means_no_filter(api_client: APIClient) -> None:
    product = ProductFactory.create()

    response = api_client.get(PRODUCTS_URL, {"category": ""})

    assert response.status_code == 200
    assert [row["sku"] for row in response.json()["results"]] == [product.sku]


# --- GET /api/products/{sku}/ -----------------------------------------------------------------


@pytest.mark.django_db
def test_product_detail_returns_one_product(api_client: APIClient) -> None:
    product = ProductFactory.create(sku="BH-RAW-001")

    response = api_client.get("/api/products/BH-RAW-001/")

    assert response.status_code == 200
    assert response.json()["name"] == product.name


@pytest.mark.django_db
@pytest.mark.parametrize("sku", ["BH-NOPE-404", "BH-HIDDEN-1"])
def test_product_detail_is_404_for_unknown_or_inactive_products(
    api_client: APIClient, sku: str
) -> None:
    ProductFactory.create(sku="BH-HIDDEN-1", is_active=False)

    response = api_client.get(f"/api/products/{sku}/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


# --- categories and knowledge -----------------------------------------------------------------


@pytest.mark.django_db
def test_category_list_is_paginated_by_name(api_client: APIClient) -> None:
    CategoryFactory.create(name="Raw Honey", slug="raw-honey", description="Unheated.")
    CategoryFactory.create(
        name="Comb Honey", slug="comb-honey", description="Straight from the hive."
    )

    response = api_client.get("/api/categories/")

    assert response.json() == {
        "count": 2,
        "next": None,
        "previous": None,
        "results": [
            {"slug": "comb-honey", "name": "Comb Honey", "description": "Straight from the hive."},
            {"slug": "raw-honey", "name": "Raw Honey", "description": "Unheated."},
        ],
    }


@pytest.mark.django_db
def test_categories_and_articles_are_listed_in_name_order_whatever_the_case(
    api_client: APIClient,
) -> None:
    # The embedded database's C.UTF-8 collation put every lower-case name after "Zebra", and
    # "C" every accented first letter.
    for name in ("Zebra Honey", "acacia", "\u00c9corce", "beeswax"):
        slug = slug_of(name.split()[0])
        CategoryFactory.create(name=name, slug=slug)
        KnowledgeArticleFactory.create(title=name, slug=slug, topic="orders")

    categories = api_client.get("/api/categories/").json()["results"]
    articles = api_client.get("/api/knowledge/").json()["results"]

    expected = ["acacia", "beeswax", "\u00c9corce", "Zebra Honey"]
    assert [c["name"] for c in categories] == expected
    assert [a["title"] for a in articles] == expected


@pytest.mark.django_db
def test_categories_whose_names_sort_alike_are_listed_by_id_page_after_page(
    api_client: APIClient,
) -> None:
    # "Manuka" and "M\u0101nuka" sort alike without their accents; the older comes first.
    older = CategoryFactory.create(name="M\u0101nuka Honey", slug="manuka-honey")
    newer = CategoryFactory.create(name="Manuka Honey", slug="manuka-honey-2")
    older.description = "Moved to the end of the table by an update."
    older.save()

    listed = api_client.get("/api/categories/").json()["results"]
    paged = [
        api_client.get("/api/categories/", {"page_size": 1, "page": page}).json()["results"][0]
        for page in (1, 2)
    ]

    assert [c["slug"] for c in listed] == [older.slug, newer.slug]
    assert paged == listed


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "skus"),
    [
        ({"ordering": "name"}, ["acacia", "ecorce", "zebra"]),
        ({"ordering": "-name"}, ["zebra", "ecorce", "acacia"]),
        ({"q": "honey", "ordering": "name"}, ["acacia", "ecorce", "zebra"]),
    ],
)
def test_products_are_sorted_by_name_without_regard_to_accents(
    api_client: APIClient, params: dict[str, str], skus: list[str]
) -> None:
    category = CategoryFactory.create()
    for sku, name in [
        ("zebra", "Zebra Honey"),
        ("ecorce", "\u00c9corce Honey"),
        ("acacia", "acacia honey"),
    ]:
        ProductFactory.create(sku=sku, name=name, category=category)

    response = api_client.get(PRODUCTS_URL, params)

    assert [row["sku"] for row in response.json()["results"]] == skus


@pytest.mark.django_db
def test_category_detail_returns_one_category(api_client: APIClient) -> None:
    CategoryFactory.create(name="Raw Honey", slug="raw-honey", description="Unheated.")

    found = api_client.get("/api/categories/raw-honey/")
    unknown = api_client.get("/api/categories/nope/")

    assert found.json() == {"slug": "raw-honey", "name": "Raw Honey", "description": "Unheated."}
    assert unknown.status_code == 404


@pytest.mark.django_db
def test_customers_cannot_create_or_change_categories(api_client: APIClient) -> None:
    CategoryFactory.create(name="Raw Honey", slug="raw-honey")
    api_client.force_authenticate(user=UserFactory.create(is_staff=False))

    created = api_client.post("/api/categories/", {"name": "Mead"}, format="json")
    changed = api_client.patch("/api/categories/raw-honey/", {"name": "Raw"}, format="json")

    assert (created.status_code, changed.status_code) == (403, 403)
    assert list(Category.objects.values_list("name", flat=True)) == ["Raw Honey"]


@pytest.mark.django_db
def test_staff_can_create_a_category_with_a_slug_made_from_its_name(
    staff_client: APIClient,
) -> None:
    payload = {"name": "Bee Pollen & Propolis"}

    response = staff_client.post("/api/categories/", payload, format="json")

    assert response.status_code == 201
    assert response.json() == {
        "slug": "bee-pollen-propolis",
        "name": "Bee Pollen & Propolis",
        "description": "",
    }
    product = staff_client.post(
        PRODUCTS_URL, new_product_payload(category="bee-pollen-propolis"), format="json"
    )
    assert product.status_code == 201


@pytest.mark.django_db
def test_a_new_categorys_runs_of_spaces_are_stored_as_one_as_imports_read_them(
    staff_client: APIClient,
) -> None:
    response = staff_client.post(
        "/api/categories/", {"name": "Bee  Pollen \t& Propolis"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["name"] == "Bee Pollen & Propolis"
    assert Category.objects.get().name == "Bee Pollen & Propolis"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "raw honey"}, "name"),
        # The same name to an import, which reads runs of spaces as one.
        ({"name": "Raw  Honey"}, "name"),
        ({"name": "Raw\tHoney"}, "name"),
        ({"name": "Raw Honey!"}, "slug"),
        # The same name to the unique constraint (LOWER), not to UPPER: the Kelvin sign.
        ({"name": "\u212aiwi Honey"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "Mead", "slug": "raw-honey"}, "slug"),
        ({"name": "Mead", "slug": "not a slug"}, "slug"),
    ],
)
def test_creating_a_category_refuses_bad_fields_naming_each(
    staff_client: APIClient, payload: dict[str, str], field: str
) -> None:
    CategoryFactory.create(name="Raw Honey", slug="raw-honey")
    CategoryFactory.create(name="Kiwi Honey", slug="kiwi-honey")

    response = staff_client.post("/api/categories/", payload, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert Category.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Straße Honig", "strasse-honig"),
        ("Øresund Heather", "oresund-heather"),
        ("Łąka Miody", "laka-miody"),
        ("Ærø Honey", "aero-honey"),
        ("Crème Brûlée", "creme-brulee"),
    ],
)
def test_a_slug_made_from_a_name_spells_out_letters_it_has_no_ascii_for(
    staff_client: APIClient, name: str, slug: str
) -> None:
    response = staff_client.post("/api/categories/", {"name": name}, format="json")

    assert response.status_code == 201
    assert response.json()["slug"] == slug


@pytest.mark.django_db
def test_a_product_s_slug_made_from_its_name_spells_out_a_sharp_s(staff_client: APIClient) -> None:
    payload = new_product_payload(name="Großvater's Heather Honey")

    response = staff_client.post(PRODUCTS_URL, payload, format="json")

    assert response.status_code == 201
    assert response.json()["slug"] == "grossvaters-heather-honey"


@pytest.mark.django_db
def test_a_category_whose_name_makes_another_categorys_slug_is_refused_until_one_is_given(
    staff_client: APIClient,
) -> None:
    # It was created as raw-honey-2, a near-duplicate the product import refuses.
    CategoryFactory.create(name="Raw Honey", slug="raw-honey")

    refused = staff_client.post("/api/categories/", {"name": "Raw  Honey!"}, format="json")
    created = staff_client.post(
        "/api/categories/", {"name": "Raw Honey!", "slug": "raw-honey-loud"}, format="json"
    )

    assert refused.status_code == 400
    assert refused.json()["errors"] == {
        "slug": [
            "The slug made from the name (raw-honey) is the category 'Raw Honey''s: use that"
            " category, or give this one a slug of its own."
        ]
    }
    assert refused.json()["error_codes"] == {"slug": ["unique"]}
    assert created.status_code == 201
    assert sorted(Category.objects.values_list("slug", flat=True)) == [
        "raw-honey",
        "raw-honey-loud",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["蜂蜜", "???"])
def test_a_category_whose_name_makes_no_slug_is_refused_until_one_is_given(
    staff_client: APIClient, name: str
) -> None:
    refused = staff_client.post("/api/categories/", {"name": name}, format="json")
    created = staff_client.post("/api/categories/", {"name": name, "slug": "honey"}, format="json")

    assert refused.status_code == 400
    assert refused.json() == {
        "detail": "Invalid input.",
        "code": "invalid",
        "errors": {
            "slug": ["The name has no ASCII letters or digits to make one of; give a slug."]
        },
        "error_codes": {"slug": ["required"]},
    }
    assert (created.status_code, created.json()["slug"]) == (201, "honey")
    assert list(Category.objects.values_list("slug", flat=True)) == ["honey"]


@pytest.mark.django_db
def test_renaming_a_category_queues_its_products_embeddings(
    staff_client: APIClient, django_capture_on_commit_callbacks
) -> None:
    category = CategoryFactory.create(name="Raw Honey", slug="raw-honey")
    CategoryFactory.create(name="Comb Honey", slug="comb-honey")
    ProductFactory.create_batch(2, category=category)

    with django_capture_on_commit_callbacks(execute=False) as renamed:
        response = staff_client.patch(
            "/api/categories/raw-honey/", {"name": "Raw & Unfiltered Honey"}, format="json"
        )
    with django_capture_on_commit_callbacks(execute=False) as described:
        staff_client.patch("/api/categories/raw-honey/", {"description": "Cold."}, format="json")
    taken = staff_client.patch("/api/categories/raw-honey/", {"name": "comb honey"}, format="json")

    category.refresh_from_db()
    assert response.status_code == 200
    assert (category.name, category.slug, category.description) == (
        "Raw & Unfiltered Honey",
        "raw-honey",
        "Cold.",
    )
    assert [callback.__name__ for callback in renamed] == ["queue"]
    assert described == []
    assert (taken.status_code, list(taken.json()["errors"])) == (400, ["name"])


@pytest.mark.django_db
def test_knowledge_list_filters_by_topic_and_hides_unpublished(api_client: APIClient) -> None:
    KnowledgeArticleFactory.create(slug="storing-honey", topic="storage")
    KnowledgeArticleFactory.create(slug="returns-policy", topic="returns")
    KnowledgeArticleFactory.create(slug="draft", topic="storage", is_published=False)

    response = api_client.get("/api/knowledge/", {"topic": "storage"})

    results = response.json()["results"]
    assert [article["slug"] for article in results] == ["storing-honey"]
    assert set(results[0]) == {"slug", "title", "topic", "body", "is_published", "updated_at"}


@pytest.mark.django_db
def test_paging_through_articles_that_share_a_title_shows_each_once(api_client: APIClient) -> None:
    slugs = {
        KnowledgeArticleFactory.create(title="Storing honey", slug=f"storing-honey-{n}").slug
        for n in range(60)
    }

    seen = field_over_every_page(api_client, "/api/knowledge/", "slug")

    assert sorted(seen) == sorted(slugs)


@pytest.mark.django_db
def test_knowledge_list_with_q_puts_the_best_match_first(api_client: APIClient) -> None:
    KnowledgeArticleFactory.create(
        slug="returns-policy",
        topic="returns",
        title="Our returns policy",
        body="Return any unopened item within 30 days for a full refund.",
    )
    KnowledgeArticleFactory.create(
        slug="crystallisation",
        topic="storage",
        title="Why honey crystallises",
        body="Glucose forms crystals over time; warm the jar gently to make it runny again.",
    )
    embeddings_refresh(kind="knowledge")

    response = api_client.get("/api/knowledge/", {"q": "my honey went solid and grainy"})

    assert response.json()["results"][0]["slug"] == "crystallisation"


@pytest.mark.django_db
def test_knowledge_list_with_q_reads_a_misspelt_word_as_meant(api_client: APIClient) -> None:
    KnowledgeArticleFactory.create(
        slug="returns-policy",
        topic="returns",
        title="Our returns policy",
        body="You can return any unopened item within 30 days for a full refund. We cannot"
        " accept returns of opened honey unless it is faulty.",
    )
    KnowledgeArticleFactory.create(
        slug="damaged-jars",
        topic="returns",
        title="Damaged or broken jars",
        body="If a jar arrives damaged, leaking or broken, send us a photo and we will replace it"
        " free of charge. Do not eat honey from a jar that has cracked.",
    )
    embeddings_refresh(kind="knowledge")

    # Read as typed, "retrun" matched no word, and the damaged jars came first.
    response = api_client.get("/api/knowledge/", {"q": "can I retrun an opened jar"})

    assert response.json()["results"][0]["slug"] == "returns-policy"


@pytest.mark.django_db
def test_knowledge_list_with_q_pages_through_every_match_as_the_product_search_does(
    api_client: APIClient,
) -> None:
    slugs = {
        KnowledgeArticleFactory.create(
            title=f"Storing honey, part {n}", slug=f"storing-honey-{n}", topic="storage"
        ).slug
        for n in range(25)
    }
    embeddings_refresh(kind="knowledge")
    search = {"q": "how should I store honey?"}

    whole = api_client.get("/api/knowledge/", {**search, "page_size": "50"}).json()
    second = api_client.get("/api/knowledge/", {**search, "page": "2"})

    assert (whole["count"], {article["slug"] for article in whole["results"]}) == (25, slugs)
    assert second.status_code == 200
    assert [article["slug"] for article in second.json()["results"]] == [
        article["slug"] for article in whole["results"][20:]
    ]


@pytest.mark.django_db
def test_knowledge_list_refuses_an_unknown_topic(api_client: APIClient) -> None:
    response = api_client.get("/api/knowledge/", {"topic": "gossip"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["topic"]


@pytest.mark.django_db
def test_knowledge_list_refuses_a_topic_given_twice(api_client: APIClient) -> None:
    response = api_client.get("/api/knowledge/", {"topic": ["shipping", "returns"]})

    assert response.status_code == 400
    assert response.json()["errors"] == {"topic": ["Give this parameter once."]}


@pytest.mark.django_db
def test_knowledge_detail_returns_one_published_article(api_client: APIClient) -> None:
    article = KnowledgeArticleFactory.create(slug="storing-honey", topic="storage")
    KnowledgeArticleFactory.create(slug="draft", is_published=False)

    found = api_client.get("/api/knowledge/storing-honey/")
    draft = api_client.get("/api/knowledge/draft/")
    unknown = api_client.get("/api/knowledge/nope/")

    assert found.status_code == 200
    assert found.json()["title"] == article.title
    assert (draft.status_code, unknown.status_code) == (404, 404)


@pytest.mark.django_db
def test_customers_cannot_create_or_change_articles(api_client: APIClient) -> None:
    article = KnowledgeArticleFactory.create(slug="storing-honey", body="Old.")
    payload = {"title": "Shipping", "topic": "shipping", "body": "Fast."}

    anonymous = api_client.post("/api/knowledge/", payload, format="json")
    api_client.force_authenticate(user=UserFactory.create(is_staff=False))
    created = api_client.post("/api/knowledge/", payload, format="json")
    changed = api_client.patch("/api/knowledge/storing-honey/", {"body": "New."}, format="json")

    assert anonymous.status_code in {401, 403}
    assert (created.status_code, changed.status_code) == (403, 403)
    assert list(KnowledgeArticle.objects.values_list("slug", "body")) == [(article.slug, "Old.")]


@pytest.mark.django_db
def test_staff_can_create_an_article_with_a_slug_made_from_its_title(
    staff_client: APIClient, django_capture_on_commit_callbacks
) -> None:
    KnowledgeArticleFactory.create(slug="uk-delivery")
    payload = {"title": "UK delivery", "topic": "shipping", "body": "Two to four days."}

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post("/api/knowledge/", payload, format="json")

    assert response.status_code == 201
    assert response.json()["slug"] == "uk-delivery-2"
    assert response.json()["is_published"] is True
    assert [callback.__name__ for callback in callbacks] == ["queue"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"topic": "gossip"}, "topic"),
        ({"slug": "not a slug"}, "slug"),
        ({"slug": "taken"}, "slug"),
        ({"title": ""}, "title"),
        ({"body": ""}, "body"),
        ({"body": "x" * 50_001}, "body"),
    ],
)
def test_creating_an_article_refuses_bad_fields_naming_each(
    staff_client: APIClient, overrides: dict[str, str], field: str
) -> None:
    KnowledgeArticleFactory.create(slug="taken")
    payload = {"title": "UK delivery", "topic": "shipping", "body": "Two to four days."}

    response = staff_client.post("/api/knowledge/", payload | overrides, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert KnowledgeArticle.objects.count() == 1


@pytest.mark.django_db
def test_an_article_whose_title_makes_no_slug_is_refused_as_the_import_refuses_it(
    staff_client: APIClient,
) -> None:
    payload = {"title": "???", "topic": "orders", "body": "Soon."}

    refused = staff_client.post("/api/knowledge/", payload, format="json")
    created = staff_client.post("/api/knowledge/", payload | {"slug": "faq"}, format="json")

    assert refused.status_code == 400
    assert refused.json()["errors"] == {
        "slug": ["The title has no ASCII letters or digits to make one of; give a slug."]
    }
    assert (created.status_code, created.json()["slug"]) == (201, "faq")
    with pytest.raises(CatalogImportError) as imported:
        knowledge_import(rows=[payload])
    assert "give a slug" in imported.value.report.errors[0]


@pytest.mark.django_db
def test_staff_can_change_and_unpublish_an_article(staff_client: APIClient) -> None:
    article = KnowledgeArticleFactory.create(slug="storing-honey", body="Old.")

    response = staff_client.patch(
        "/api/knowledge/storing-honey/", {"body": "New.", "is_published": False}, format="json"
    )
    bad = staff_client.patch("/api/knowledge/storing-honey/", {"topic": "gossip"}, format="json")

    article.refresh_from_db()
    assert response.status_code == 200
    assert (article.body, article.is_published, article.topic) == ("New.", False, article.topic)
    assert (bad.status_code, list(bad.json()["errors"])) == (400, ["topic"])
    assert response.json()["is_published"] is False
    assert APIClient().get("/api/knowledge/storing-honey/").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("codenames", "status"),
    [
        (["view_knowledgearticle"], 200),
        (["change_knowledgearticle"], 200),
        (["add_knowledgearticle", "view_product"], 404),
    ],
)
def test_staff_who_may_view_or_change_articles_can_read_an_unpublished_one(
    api_client: APIClient, codenames: list[str], status: int
) -> None:
    KnowledgeArticleFactory.create(slug="draft-policy", is_published=False)
    api_client.force_authenticate(user=CatalogStaffFactory.create(catalog_permissions=codenames))

    response = api_client.get("/api/knowledge/draft-policy/")
    listed = api_client.get("/api/knowledge/")

    assert response.status_code == status
    assert listed.json()["count"] == 0


@pytest.mark.django_db
def test_customers_cannot_read_an_unpublished_article() -> None:
    KnowledgeArticleFactory.create(slug="draft-policy", is_published=False)
    customer = APIClient()
    customer.force_authenticate(user=UserFactory.create(is_staff=False))

    response = customer.get("/api/knowledge/draft-policy/")

    assert response.status_code == 404


# --- writes -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_users_cannot_create_products(api_client: APIClient) -> None:
    response = api_client.post(PRODUCTS_URL, new_product_payload(), format="json")

    assert response.status_code in {401, 403}
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_customers_cannot_create_or_change_products(api_client: APIClient) -> None:
    product = ProductFactory.create(price=Decimal("9.50"))
    api_client.force_authenticate(user=UserFactory.create(is_staff=False))

    created = api_client.post(PRODUCTS_URL, new_product_payload(), format="json")
    changed = api_client.patch(f"/api/products/{product.sku}/", {"price": "1"}, format="json")

    assert (created.status_code, changed.status_code) == (403, 403)
    assert list(Product.objects.values_list("sku", "price")) == [(product.sku, Decimal("9.50"))]


@pytest.mark.django_db
def test_staff_without_catalogue_permissions_cannot_write_it(api_client: APIClient) -> None:
    product = ProductFactory.create(price=Decimal("9.50"))
    category = product.category
    article = KnowledgeArticleFactory.create(slug="storing-honey", body="Old.")
    api_client.force_authenticate(user=CatalogStaffFactory.create(catalog_permissions=[]))

    answers = [
        api_client.post(PRODUCTS_URL, new_product_payload(), format="json"),
        api_client.patch(f"/api/products/{product.sku}/", {"price": "1"}, format="json"),
        api_client.post("/api/categories/", {"name": "Mead"}, format="json"),
        api_client.patch(f"/api/categories/{category.slug}/", {"name": "Raw"}, format="json"),
        api_client.post("/api/knowledge/", {"title": "T", "topic": "shipping", "body": "B"}),
        api_client.patch(f"/api/knowledge/{article.slug}/", {"body": "New."}, format="json"),
    ]

    assert [answer.status_code for answer in answers] == [403] * 6
    assert list(Product.objects.values_list("sku", "price")) == [(product.sku, Decimal("9.50"))]
    assert Category.objects.get(pk=category.pk).name == category.name
    assert not Category.objects.filter(name="Mead").exists()
    assert list(KnowledgeArticle.objects.values_list("body", flat=True)) == ["Old."]


@pytest.mark.django_db
def test_staff_who_may_change_products_but_not_add_them_can_only_change_them(
    api_client: APIClient,
) -> None:
    product = ProductFactory.create(price=Decimal("9.50"))
    api_client.force_authenticate(
        user=CatalogStaffFactory.create(catalog_permissions=["change_product"])
    )

    created = api_client.post(PRODUCTS_URL, new_product_payload(), format="json")
    changed = api_client.patch(f"/api/products/{product.sku}/", {"price": "8.95"}, format="json")

    assert (created.status_code, changed.status_code) == (403, 200)
    assert list(Product.objects.values_list("sku", "price")) == [(product.sku, Decimal("8.95"))]


@pytest.mark.django_db
def test_staff_can_create_a_product(staff_client: APIClient) -> None:
    response = staff_client.post(PRODUCTS_URL, new_product_payload(), format="json")

    product = Product.objects.get(sku="BH-NEW-001")
    assert response.status_code == 201
    assert response.json()["slug"] == "linden-blossom-honey-340g"
    assert (product.price, product.stock, product.tags) == (Decimal("10.95"), 12, ["raw", "light"])


@pytest.mark.django_db(transaction=True)
def test_two_products_of_one_name_created_at_once_are_both_created_under_slugs_of_their_own(
    staff_client: APIClient,
) -> None:
    payload = new_product_payload()
    first = partial(
        services.product_create, sku="BH-NEW-000", name=payload["name"],
        category=Category.objects.get(), price=Decimal("10.95"),
    )  # fmt: skip

    # Another tab's create, not committed yet as this one looks its slug up.
    with saved_meanwhile(first):
        second = staff_client.post(PRODUCTS_URL, payload, format="json")

    assert second.status_code == 201
    assert sorted(Product.objects.values_list("slug", flat=True)) == [
        "linden-blossom-honey-340g",
        "linden-blossom-honey-340g-bh-new-001",
    ]


@pytest.mark.django_db(transaction=True)
def test_two_articles_of_one_title_created_at_once_are_both_created_under_slugs_of_their_own(
    staff_client: APIClient,
) -> None:
    payload = {"title": "UK delivery", "topic": "shipping", "body": "Two to four days."}
    first = partial(services.knowledge_article_create, **payload)

    with saved_meanwhile(first):
        second = staff_client.post("/api/knowledge/", payload, format="json")

    assert second.status_code == 201
    assert sorted(KnowledgeArticle.objects.values_list("slug", flat=True)) == [
        "uk-delivery",
        "uk-delivery-2",
    ]


@pytest.mark.django_db
def test_what_staff_create_is_answered_with_its_location(staff_client: APIClient) -> None:
    created = [
        staff_client.post("/api/categories/", {"name": "Mead"}, format="json"),
        staff_client.post(PRODUCTS_URL, new_product_payload(), format="json"),
        staff_client.post(
            "/api/knowledge/",
            {"title": "Mead and the law", "topic": "shipping", "body": "Over 18s only."},
            format="json",
        ),
    ]

    assert [response["Location"] for response in created] == [
        "/api/categories/mead/",
        "/api/products/BH-NEW-001/",
        "/api/knowledge/mead-and-the-law/",
    ]
    assert [staff_client.get(r["Location"]).json() == r.json() for r in created] == [True] * 3


@pytest.mark.django_db
def test_staff_logged_in_with_a_session_can_create_a_product(client) -> None:
    client.force_login(CatalogStaffFactory.create())

    response = client.post(PRODUCTS_URL, new_product_payload(), content_type="application/json")

    assert response.status_code == 201
    assert Product.objects.filter(sku="BH-NEW-001").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"price": "-1"}, "price"),
        ({"price": "1.999"}, "price"),
        ({"category": "no-such-category"}, "category"),
        ({"sku": "bad sku"}, "sku"),
        ({"currency": "gbp"}, "currency"),
        ({"currency": "XYZ"}, "currency"),
        ({"stock": -2}, "stock"),
        ({"category": "raw\u0000honey"}, "category"),
        ({"tags": ["gift, boxed"]}, "tags"),
        ({"tags": ["gift;boxed"]}, "tags"),
        ({"description": "x" * 10_001}, "description"),
        ({"price": "1e3"}, "price"),
        ({"weight_grams": "1_000"}, "weight_grams"),
        ({"stock": "\u0663"}, "stock"),
    ],
)
def test_an_invalid_new_product_is_refused_and_nothing_is_written(
    staff_client: APIClient, overrides: dict[str, object], field: str
) -> None:
    response = staff_client.post(PRODUCTS_URL, new_product_payload(**overrides), format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert not Product.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "errors"),
    [
        ({"stock": -1}, {"stock": ["Ensure this value is greater than or equal to 0."]}),
        ({"price": "-1"}, {"price": ["Ensure this value is greater than or equal to 0."]}),
        # Each tag's problem in the field's list of messages, as every field's are.
        (
            {"tags": ["ok", "a,b", ""]},
            {
                "tags": [
                    "Tag 2: a tag cannot hold ',' or ';'",
                    "Tag 3: This field may not be blank.",
                ]
            },
        ),
        (
            {"currency": "gbp"},
            {"currency": ["a 3-letter ISO currency code in capitals, such as GBP"]},
        ),
        (
            {"currency": "GPB"},
            {
                "currency": [
                    "GPB is not the ISO 4217 code of a currency in circulation, such as GBP"
                ]
            },
        ),
    ],
)
def test_a_new_product_is_refused_what_the_admin_refuses_in_the_same_words(
    staff_client: APIClient, overrides: dict[str, object], errors: dict[str, list[str]]
) -> None:
    response = staff_client.post(PRODUCTS_URL, new_product_payload(**overrides), format="json")

    assert response.json()["errors"] == errors


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("price", "cents"),
    [
        # Zeros past the second place lose nothing (the catalogue import reads them alike).
        ("12.500", "12.50"),
        ("12.5000", "12.50"),
        (12.5, "12.50"),
        # Ten digits once the zeros are dropped, as max_digits=10 allows.
        ("12345678.000", "12345678.00"),
        # Zero is stored and shown unsigned.
        ("-0", "0.00"),
        ("-0.000", "0.00"),
        (-0.0, "0.00"),
    ],
)
def test_a_new_products_price_with_zeros_past_the_cents_is_stored_in_cents(
    staff_client: APIClient, price: object, cents: str
) -> None:
    response = staff_client.post(PRODUCTS_URL, new_product_payload(price=price), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["price"] == cents
    assert str(Product.objects.get(sku="BH-NEW-001").price) == cents


@pytest.mark.django_db
def test_a_price_changed_to_negative_zero_is_answered_and_stored_as_zero(
    staff_client: APIClient,
) -> None:
    product = ProductFactory.create(price=Decimal("9.50"))

    response = staff_client.patch(f"/api/products/{product.sku}/", {"price": "-0"}, format="json")

    product.refresh_from_db()
    assert response.status_code == 200
    assert response.json()["price"] == "0.00"
    assert str(product.price) == "0.00"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("price", "message"),
    [
        ("12.505", "Ensure that there are no more than 2 decimal places."),
        ("12.5050", "Ensure that there are no more than 2 decimal places."),
        ("0.0010", "Ensure that there are no more than 2 decimal places."),
        ("123456789.000", "Ensure that there are no more than 10 digits in total."),
    ],
)
def test_a_new_products_price_finer_than_cents_is_refused_by_field(
    staff_client: APIClient, price: str, message: str
) -> None:
    response = staff_client.post(PRODUCTS_URL, new_product_payload(price=price), format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"price": [message]}
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_each_tag_s_message_keeps_its_own_code(staff_client: APIClient) -> None:
    response = staff_client.post(
        PRODUCTS_URL, new_product_payload(tags=["ok", "a,b", ""]), format="json"
    )

    assert response.json()["error_codes"] == {"tags": ["invalid", "blank"]}


@pytest.mark.django_db
def test_a_new_product_tag_that_lower_cases_longer_than_a_tag_is_refused(
    staff_client: APIClient,
) -> None:
    # "\u0130" is one character and lower-cases to two: 40 as sent are 80 as stored.
    payload = new_product_payload(tags=["raw", "\u0130" * 40])

    response = staff_client.post(PRODUCTS_URL, payload, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "tags": ["Tag 2: Ensure this value has at most 40 characters (it has 80)."]
    }
    assert response.json()["error_codes"] == {"tags": ["max_length"]}
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_a_changed_tag_that_lower_cases_longer_than_a_tag_is_refused(
    staff_client: APIClient,
) -> None:
    ProductFactory.create(sku="T-1", tags=["raw"])

    response = staff_client.patch("/api/products/T-1/", {"tags": ["\u0130" * 40]}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "tags": ["Tag 1: Ensure this value has at most 40 characters (it has 80)."]
    }
    assert response.json()["error_codes"] == {"tags": ["max_length"]}
    assert list(Product.objects.values_list("tags", flat=True)) == [["raw"]]


@pytest.mark.django_db
def test_a_product_with_a_taken_sku_is_refused(staff_client: APIClient) -> None:
    ProductFactory.create(sku="BH-NEW-001")

    response = staff_client.post(PRODUCTS_URL, new_product_payload(), format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"sku": ["A product with this sku already exists."]}
    assert response.json()["error_codes"] == {"sku": ["unique"]}  # the model's own code
    assert Product.objects.count() == 1


@pytest.mark.django_db
def test_staff_can_change_a_product(staff_client: APIClient) -> None:
    product = ProductFactory.create(price=Decimal("9.50"), stock=4)

    response = staff_client.patch(
        f"/api/products/{product.sku}/", {"price": "10.25", "stock": 0}, format="json"
    )

    product.refresh_from_db()
    assert response.status_code == 200
    assert response.json()["in_stock"] is False
    assert (product.price, product.stock) == (Decimal("10.25"), 0)


@pytest.mark.django_db
def test_staff_who_deactivate_a_product_see_it_and_can_still_read_it(
    staff_client: APIClient,
) -> None:
    ProductFactory.create(sku="T-1")

    response = staff_client.patch("/api/products/T-1/", {"is_active": False}, format="json")
    read = staff_client.get("/api/products/T-1/")
    listed = staff_client.get(PRODUCTS_URL)

    assert (response.status_code, response.json()["is_active"]) == (200, False)
    assert (read.status_code, read.json()["is_active"]) == (200, False)
    assert read.json() == response.json()
    assert listed.json()["count"] == 0


@pytest.mark.django_db
def test_a_new_product_answer_says_it_is_active(staff_client: APIClient) -> None:
    response = staff_client.post(PRODUCTS_URL, new_product_payload(), format="json")

    assert response.json()["is_active"] is True


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("codenames", "status"),
    [(["view_product"], 200), (["change_product"], 200), (["add_product"], 404), ([], 404)],
)
def test_staff_who_may_view_or_change_products_can_read_an_inactive_one(
    api_client: APIClient, codenames: list[str], status: int
) -> None:
    ProductFactory.create(sku="T-1", is_active=False)
    api_client.force_authenticate(user=CatalogStaffFactory.create(catalog_permissions=codenames))

    response = api_client.get("/api/products/T-1/")

    assert response.status_code == status


@pytest.mark.django_db
def test_customers_read_an_active_product_without_is_active_and_an_inactive_one_not_at_all(
    api_client: APIClient,
) -> None:
    ProductFactory.create(sku="T-1")
    ProductFactory.create(sku="T-2", is_active=False)
    api_client.force_authenticate(user=UserFactory.create(is_staff=False))

    active = api_client.get("/api/products/T-1/")
    inactive = api_client.get("/api/products/T-2/")

    assert (active.status_code, "is_active" in active.json()) == (200, False)
    assert inactive.status_code == 404


@pytest.mark.django_db
def test_an_invalid_change_is_refused_and_nothing_is_written(staff_client: APIClient) -> None:
    product = ProductFactory.create(price=Decimal("9.50"), stock=4)

    response = staff_client.patch(
        f"/api/products/{product.sku}/", {"price": "10.25", "stock": -1}, format="json"
    )

    product.refresh_from_db()
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["stock"]
    assert (product.price, product.stock) == (Decimal("9.50"), 4)


@pytest.mark.django_db
def test_changing_an_unknown_product_is_404(staff_client: APIClient) -> None:
    response = staff_client.patch("/api/products/BH-NOPE/", {"price": "1"}, format="json")

    assert response.status_code == 404


@pytest.mark.django_db
def test_a_sku_holding_a_nul_is_404_not_a_database_error(staff_client: APIClient) -> None:
    ProductFactory.create(sku="BH-RAW-001")

    read = staff_client.get("/api/products/BH-RAW%00001/")
    change = staff_client.patch("/api/products/BH-RAW%00001/", {"price": "1"}, format="json")

    assert (read.status_code, change.status_code) == (404, 404)


# --- keys that name no writable field -------------------------------------------------------


@pytest.mark.django_db
def test_a_new_article_with_a_misspelt_field_is_refused_not_published(
    staff_client: APIClient,
) -> None:
    payload = {"title": "Draft policy", "topic": "orders", "body": "secret draft"}

    response = staff_client.post("/api/knowledge/", payload | {"published": False}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Invalid input.",
        "code": "invalid",
        "errors": {"published": ["Unknown field."]},
        "error_codes": {"published": ["unknown_field"]},
    }
    assert not KnowledgeArticle.objects.exists()


REFUSAL_CODES = {
    "Unknown field.": "unknown_field",
    "This field cannot be changed.": "read_only",
    "Ensure this value is greater than or equal to 0.": "min_value",
}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "payload", "errors"),
    [
        ("/api/products/T-1/", {"stok": 50}, {"stok": ["Unknown field."]}),
        ("/api/products/T-1/", {"sku": "NEW"}, {"sku": ["This field cannot be changed."]}),
        (
            "/api/products/T-1/",
            {"in_stock": False},
            {"in_stock": ["This field cannot be changed."]},
        ),
        (
            "/api/products/T-1/",
            {"stock": -1, "stok": 50},
            {
                "stock": ["Ensure this value is greater than or equal to 0."],
                "stok": ["Unknown field."],
            },
        ),
        (
            "/api/categories/raw-honey/",
            {"slug": "zzz"},
            {"slug": ["This field cannot be changed."]},
        ),
        ("/api/categories/raw-honey/", {"nmae": "Raw"}, {"nmae": ["Unknown field."]}),
        (
            "/api/knowledge/storing-honey/",
            {"slug": "x"},
            {"slug": ["This field cannot be changed."]},
        ),
        ("/api/knowledge/storing-honey/", {"published": False}, {"published": ["Unknown field."]}),
    ],
)
def test_a_change_naming_a_field_it_cannot_write_is_refused_and_nothing_is_written(
    staff_client: APIClient, url: str, payload: dict[str, object], errors: dict[str, list[str]]
) -> None:
    ProductFactory.create(sku="T-1", stock=4, category__slug="raw-honey")
    KnowledgeArticleFactory.create(slug="storing-honey", is_published=True)

    response = staff_client.patch(url, payload, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Invalid input.",
        "code": "invalid",
        "errors": errors,
        "error_codes": {
            field: [REFUSAL_CODES[message] for message in messages]
            for field, messages in errors.items()
        },
    }
    assert list(Product.objects.values_list("sku", "stock")) == [("T-1", 4)]
    assert list(Category.objects.values_list("slug", flat=True)) == ["raw-honey"]
    assert list(KnowledgeArticle.objects.values_list("slug", "is_published")) == [
        ("storing-honey", True)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "payload"),
    [
        ("/api/products/T-1/", {"name": 123}),
        ("/api/products/T-1/", {"tags": ["raw", 7]}),
        ("/api/categories/raw-honey/", {"name": True}),
        ("/api/knowledge/storing-honey/", {"body": 1.5}),
    ],
)
def test_a_change_giving_text_as_another_json_type_is_refused(
    staff_client: APIClient, url: str, payload: dict[str, object]
) -> None:
    # DRF alone stores 123 as "123": a client's mistake (an id for a name) would go unseen.
    ProductFactory.create(
        sku="T-1", name="Raw", tags=["raw"], category__slug="raw-honey", category__name="Raw Honey"
    )
    KnowledgeArticleFactory.create(slug="storing-honey", body="Keep it dry.")

    response = staff_client.patch(url, payload, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {field: ["Not a valid string."] for field in payload}
    assert list(Product.objects.values_list("name", "tags")) == [("Raw", ["raw"])]
    assert list(Category.objects.values_list("slug", "name")) == [("raw-honey", "Raw Honey")]
    assert list(KnowledgeArticle.objects.values_list("body", flat=True)) == ["Keep it dry."]


@pytest.mark.django_db
def test_a_new_product_with_a_number_for_its_sku_is_refused(staff_client: APIClient) -> None:
    response = staff_client.post(PRODUCTS_URL, new_product_payload(sku=1001), format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"sku": ["Not a valid string."]}
    assert not Product.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("extra", "errors"),
    [
        ({"bogus": 1}, {"bogus": ["Unknown field."]}),
        ({"slug": "my-slug"}, {"slug": ["This field cannot be set."]}),
    ],
)
def test_a_new_product_naming_a_field_it_cannot_write_is_refused(
    staff_client: APIClient, extra: dict[str, object], errors: dict[str, list[str]]
) -> None:
    response = staff_client.post(PRODUCTS_URL, new_product_payload(**extra), format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == errors
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_a_new_category_with_an_unknown_field_is_refused(staff_client: APIClient) -> None:
    response = staff_client.post(
        "/api/categories/", {"name": "Mead", "descripton": "Honey wine."}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {"descripton": ["Unknown field."]}
    assert not Category.objects.exists()


@pytest.mark.django_db
def test_tags_of_a_new_product_are_normalised_so_the_tag_filter_finds_it(
    staff_client: APIClient,
) -> None:
    payload = new_product_payload(tags=["Spicy", " HOT ", "spicy"])
    staff_client.post(PRODUCTS_URL, payload, format="json")

    response = staff_client.get(PRODUCTS_URL, {"tags": "spicy,hot"})

    assert [row["sku"] for row in response.json()["results"]] == ["BH-NEW-001"]
    assert response.json()["results"][0]["tags"] == ["spicy", "hot"]


@pytest.mark.django_db
@pytest.mark.parametrize("asked", ["m\u0101nuka", "ma\u0304nuka"])
def test_a_tag_written_with_a_combining_accent_is_the_tag_written_with_an_accented_letter(
    staff_client: APIClient, asked: str
) -> None:
    # "ma\u0304nuka" is "mānuka" as macOS and some spreadsheets write it (NFD).
    staff_client.post(PRODUCTS_URL, new_product_payload(tags=["ma\u0304nuka"]), format="json")

    response = staff_client.get(PRODUCTS_URL, {"tags": asked})

    assert [row["sku"] for row in response.json()["results"]] == ["BH-NEW-001"]
    assert response.json()["results"][0]["tags"] == ["m\u0101nuka"]
