import csv
import io
import json
import re
from collections.abc import Callable
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any, TypeVar

import pytest
import redis
from django.conf import settings
from django.contrib import admin
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from beemanhoney.common.ports import free_port
from catalog import admin as catalog_admin
from catalog import services
from catalog.admin import ProductAdmin
from catalog.embeddings import current_model_name, text_hash
from catalog.import_files import FileColumns, read_catalog_file
from catalog.knowledge_rows import KNOWLEDGE_COLUMNS
from catalog.models import (
    EMBEDDING_DIMENSIONS,
    Category,
    KnowledgeArticle,
    KnowledgePassage,
    Product,
)
from catalog.product_rows import PRODUCT_COLUMNS
from catalog.services import knowledge_import, product_import
from tests.catalog.factories import (
    CATALOG_MANAGER_PERMISSIONS,
    CatalogStaffFactory,
    CategoryFactory,
    KnowledgeArticleFactory,
    ProductFactory,
    UserFactory,
)
from tests.support.celery_worker import new_queue_name, producing_to_broker, tasks_sent_to
from tests.support.transactions import saved_meanwhile

CHANGELIST = reverse("admin:catalog_product_changelist")
IMPORT = reverse("admin:catalog_product_import")
KNOWLEDGE_CHANGELIST = reverse("admin:catalog_knowledgearticle_changelist")
KNOWLEDGE_IMPORT = reverse("admin:catalog_knowledgearticle_import")
CURRENT = current_model_name()
A_VECTOR = [1 / EMBEDDING_DIMENSIONS**0.5] * EMBEDDING_DIMENSIONS
EmbeddedRow = TypeVar("EmbeddedRow", Product, KnowledgeArticle)

VALID_CSV = (
    "sku,name,category,price,stock,tags\n"
    "BH-RAW-001,Wildflower Raw Honey 500g,Raw Honey,9.50,184,raw;british\n"
    "BH-WAX-001,Beeswax Food Wraps Set of 3,Beeswax Goods,15.95,165,beeswax\n"
)
INVALID_CSV = (
    "sku,name,category,price,stock,tags\n"
    "BH-RAW-001,Wildflower Raw Honey 500g,Raw Honey,9.50,184,raw\n"
    "BH-WAX-001,Beeswax Food Wraps Set of 3,Beeswax Goods,-2,165,beeswax\n"
)


@pytest.fixture
def staff_client(client: Client) -> Client:
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    return client


def staff_with(client: Client, *codenames: str) -> Client:
    """``client`` logged in as a staff user holding only these catalog permissions."""
    client.force_login(CatalogStaffFactory.create(catalog_permissions=codenames))
    return client


def product_form_data(category: Category, **overrides: str) -> dict[str, object]:
    data: dict[str, object] = {
        "sku": "BH-ADM-001",
        "name": "Hot Honey",
        "slug": "hot-honey",
        "category": category.pk,
        "price": "8.95",
        "currency": "GBP",
        "weight_grams": "340",
        "stock": "10",
        "is_active": "on",
        "tags": "Spicy, HOT,spicy",
    }
    return data | overrides


def csv_upload(content: str, name: str = "catalog.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode(), content_type="text/csv")


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def embedded_now(row: EmbeddedRow) -> EmbeddedRow:
    """``row`` as if the configured model had just embedded its text."""
    row.embedding, row.embedding_model = A_VECTOR, CURRENT
    row.embedding_text_hash = text_hash(row.embedding_text())
    row.save()
    return row


@pytest.fixture
def products() -> dict[str, Product]:
    stale = embedded_now(ProductFactory.create(stock=4))
    Product.objects.filter(pk=stale.pk).update(name="Renamed since it was embedded")
    return {
        "current": embedded_now(ProductFactory.create(stock=5)),
        "stale": stale,
        "other": ProductFactory.create(
            stock=0, embedding=A_VECTOR, embedding_model="openai:old-model"
        ),
        "missing": ProductFactory.create(stock=3),
    }


# --- changelist -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"current", "stale", "other", "missing"}),
        ({"in_stock": "yes"}, {"current", "stale", "missing"}),
        ({"in_stock": "no"}, {"other"}),
        ({"embedding": "current"}, {"current"}),
        ({"embedding": "stale"}, {"stale"}),
        ({"embedding": "other"}, {"other"}),
        ({"embedding": "missing"}, {"missing"}),
        ({"in_stock": "yes", "embedding": "missing"}, {"missing"}),
    ],
)
def test_product_changelist_renders_with_each_filter(
    staff_client: Client, products: dict[str, Product], params: dict[str, str], expected: set[str]
) -> None:
    response = staff_client.get(CHANGELIST, params)

    shown = set(response.context["cl"].result_list)
    assert response.status_code == 200
    assert shown == {products[name] for name in expected}
    assert IMPORT in response.content.decode()


def _named_rows(model: str, names: tuple[str, ...]) -> None:
    for name in names:
        slug = name.split()[0].lower()
        if model == "product":
            ProductFactory.create(name=name)
        elif model == "category":
            CategoryFactory.create(name=name, slug=slug)
        else:
            KnowledgeArticleFactory.create(title=name, slug=slug)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model", "column", "field"),
    [("product", 2, "name"), ("category", 1, "name"), ("knowledgearticle", 1, "title")],
)
@pytest.mark.parametrize(("descending", "expected"), [(False, "abZ"), (True, "Zba")])
def test_a_list_sorted_by_its_name_column_ignores_case_as_the_catalogue_does(
    staff_client: Client, model: str, column: int, field: str, descending: bool, expected: str
) -> None:
    _named_rows(model, ("Zebra Blend", "acacia", "beeswax"))

    response = staff_client.get(
        reverse(f"admin:catalog_{model}_changelist"), {"o": f"{'-' if descending else ''}{column}"}
    )

    shown = response.context["cl"].result_list
    assert "".join(getattr(row, field)[0] for row in shown) == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    "term",
    ["bh-hea", "Heath", "heather 500", "manuka", "CORNW", "crystal", "Bestseller"],
    ids=["sku", "name", "words", "floral source", "origin", "description", "tag"],
)
def test_the_product_search_finds_a_product_by_its_indexes_not_by_reading_every_product(
    staff_client: Client, term: str
) -> None:
    found = ProductFactory.create(
        sku="BH-HEA-500",
        name="Heather Honey 500g",
        floral_source="Mānuka",
        origin="Cornwall, England",
        description="Sets slowly to a crystalline texture.",
        tags=["bestseller"],
    )
    ProductFactory.create()  # a meadow honey: found by none of them

    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get(CHANGELIST, {"q": term})

    assert list(response.context["cl"].result_list) == [found]
    assert not [q for q in queries if "LIKE UPPER('%" in q["sql"]]


@pytest.mark.django_db
def test_the_product_search_counts_what_it_finds_from_the_indexes_of_each_column_it_searches(
    staff_client: Client,
) -> None:
    ProductFactory.create_batch(3)

    with CaptureQueriesContext(connection) as queries:
        staff_client.get(CHANGELIST, {"q": "heather"})
    [count] = [q["sql"] for q in queries if "COUNT(*)" in q["sql"] and "@@" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the indexes, if they hold the rows
        cursor.execute(f"EXPLAIN {count}")
        plan = "\n".join(row[0] for row in cursor.fetchall())

    for index in ("product_sku_upper_prefix", "product_tags_gin", "product_search_vector_gin"):
        assert index in plan


@pytest.mark.django_db
def test_the_product_list_sorts_by_what_an_index_orders_and_by_stock(
    staff_client: Client,
) -> None:
    listing = staff_client.get(CHANGELIST)

    assert listing.context["cl"].sortable_by == ["sku", "product_name", "price", "stock"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params", [{"tags": "x"}, {"tags__contains": "raw"}, {"search_vector": "x"}]
)
def test_product_changelist_refuses_a_lookup_on_an_array_or_a_vector_with_400(
    staff_client: Client, params: dict[str, str]
) -> None:
    ProductFactory.create()

    response = staff_client.get(CHANGELIST, params)

    assert response.status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changelist", "params"),
    [
        (CHANGELIST, {"sku__regex": "("}),
        (CHANGELIST, {"sku__iregex": "("}),
        (CHANGELIST, {"embedding_text_hash__regex": "("}),
        (CHANGELIST, {"name__unaccent": "x"}),
        (CHANGELIST, {"sku": "\x00"}),
        (CHANGELIST, {"in_stock": "\x00"}),
        (KNOWLEDGE_CHANGELIST, {"title__regex": "("}),
        (KNOWLEDGE_CHANGELIST, {"body__regex": "("}),
        (KNOWLEDGE_CHANGELIST, {"topic__exact": "\x00"}),
        (reverse("admin:catalog_category_changelist"), {"name__iregex": "("}),
    ],
)
def test_a_catalog_list_refuses_a_regex_lookup_or_a_nul_in_its_url_with_400(
    staff_client: Client, changelist: str, params: dict[str, str]
) -> None:
    ProductFactory.create()
    KnowledgeArticleFactory.create()

    response = staff_client.get(changelist, params)

    assert response.status_code == 400


@pytest.mark.django_db
def test_product_pages_read_no_vectors_and_a_save_keeps_them(
    staff_client: Client, products: dict[str, Product]
) -> None:
    product = products["current"]
    change = reverse("admin:catalog_product_change", args=[product.pk])
    form = product_form_data(product.category, sku=product.sku, slug=product.slug, stock="7")

    statements: list[str] = []

    def record(execute: Any, sql: str, *args: Any) -> Any:
        statements.append(sql)
        return execute(sql, *args)

    # Each request empties Django's own query log, so the statements are recorded as they run.
    with connection.execute_wrapper(record):
        listed = staff_client.get(CHANGELIST)
        shown = staff_client.get(change)
    saved = staff_client.post(change, form)

    read_sql = " ".join(statements)
    product.refresh_from_db()
    assert (listed.status_code, shown.status_code, saved.status_code) == (200, 200, 302)
    for column in ("embedding", "embedding_half", "search_vector"):
        assert f'"catalog_product"."{column}"' not in read_sql
    assert product.stock == 7
    assert list(product.embedding) == pytest.approx(A_VECTOR)


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["current", "stale", "other", "missing"])
def test_knowledge_changelist_renders_with_the_embedding_filter(
    staff_client: Client, state: str
) -> None:
    stale = embedded_now(KnowledgeArticleFactory.create())
    KnowledgeArticle.objects.filter(pk=stale.pk).update(body="Rewritten since it was embedded.")
    articles = {
        "current": embedded_now(KnowledgeArticleFactory.create()),
        "stale": stale,
        "other": KnowledgeArticleFactory.create(
            embedding=A_VECTOR, embedding_model="openai:old-model"
        ),
        "missing": KnowledgeArticleFactory.create(),
    }

    response = staff_client.get(KNOWLEDGE_CHANGELIST, {"embedding": state})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [articles[state]]


@pytest.mark.django_db
def test_the_admin_is_for_staff_only(client: Client) -> None:
    client.force_login(UserFactory.create(is_staff=False))

    response = client.get(IMPORT)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


# --- import view ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_who_may_only_view_products_cannot_import_or_see_the_import_link(
    client: Client,
) -> None:
    viewer = staff_with(client, "view_product")

    changelist = viewer.get(CHANGELIST)
    form = viewer.get(IMPORT)
    upload = viewer.post(IMPORT, {"file": csv_upload(VALID_CSV)})

    assert changelist.status_code == 200
    assert IMPORT not in changelist.content.decode()
    assert form.status_code == 403
    assert upload.status_code == 403
    assert not Product.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("codename", ["add_product", "change_product"])
def test_importing_needs_both_the_add_and_the_change_permission(
    client: Client, codename: str
) -> None:
    staff = staff_with(client, "view_product", codename)

    response = staff.post(IMPORT, {"file": csv_upload(VALID_CSV)})

    assert response.status_code == 403
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_staff_who_may_add_and_change_products_can_import(client: Client) -> None:
    CategoryFactory.create(name="Raw Honey")
    CategoryFactory.create(name="Beeswax Goods")
    staff = staff_with(client, "view_product", "add_product", "change_product")

    changelist = staff.get(CHANGELIST)
    response = staff.post(IMPORT, {"file": csv_upload(VALID_CSV)})

    assert IMPORT in changelist.content.decode()
    assert response.status_code == 302
    assert set(Product.objects.values_list("sku", flat=True)) == {"BH-RAW-001", "BH-WAX-001"}


@pytest.mark.django_db
def test_staff_who_may_not_add_categories_cannot_import_a_file_naming_a_new_one(
    client: Client,
) -> None:
    CategoryFactory.create(name="Raw Honey")
    staff = staff_with(client, "view_product", "add_product", "change_product")

    response = staff.post(IMPORT, {"file": csv_upload(VALID_CSV)})

    page = response.content.decode()
    assert response.status_code == 200
    assert "the file names categories that do not exist (Beeswax Goods)" in page
    assert "you may not add categories" in page
    assert not Product.objects.exists()
    assert list(Category.objects.values_list("name", flat=True)) == ["Raw Honey"]


@pytest.mark.django_db
def test_staff_who_may_not_add_categories_skipping_invalid_rows_load_those_naming_existing_ones(
    client: Client,
) -> None:
    CategoryFactory.create(name="Raw Honey")
    staff = staff_with(client, "view_product", "add_product", "change_product")

    response = staff.post(IMPORT, {"file": csv_upload(VALID_CSV), "skip_invalid": "on"})

    assert response.status_code == 302
    assert messages_of(response) == [
        "Imported catalog.csv: created 1, updated 0, unchanged 0, invalid 1",
        "line 3: category: 'Beeswax Goods' would be a new category, and this import may not"
        " create categories",
    ]
    assert list(Product.objects.values_list("sku", flat=True)) == ["BH-RAW-001"]
    assert list(Category.objects.values_list("name", flat=True)) == ["Raw Honey"]


@pytest.mark.django_db
def test_staff_who_may_add_categories_import_a_file_naming_a_new_one(client: Client) -> None:
    staff = staff_with(client, "view_product", "add_product", "change_product", "add_category")

    response = staff.post(IMPORT, {"file": csv_upload(VALID_CSV)})

    assert response.status_code == 302
    assert set(Category.objects.values_list("name", flat=True)) == {"Raw Honey", "Beeswax Goods"}
    assert Product.objects.count() == 2


@pytest.mark.django_db
def test_import_view_shows_the_upload_form(staff_client: Client) -> None:
    response = staff_client.get(IMPORT)

    assert response.status_code == 200
    assert 'type="file"' in response.content.decode()
    assert '<a href="/admin/catalog/product/">Products</a> &rsaquo;\n  Import' in (
        response.content.decode()
    )


@pytest.mark.django_db
def test_import_view_loads_an_uploaded_csv_and_redirects(staff_client: Client) -> None:
    response = staff_client.post(IMPORT, {"file": csv_upload(VALID_CSV)})

    assert response.status_code == 302
    assert response["Location"] == CHANGELIST
    assert set(Product.objects.values_list("sku", flat=True)) == {"BH-RAW-001", "BH-WAX-001"}
    assert messages_of(response) == [
        "Imported catalog.csv: created 2, updated 0, unchanged 0, invalid 0;"
        " created categories: Raw Honey, Beeswax Goods"
    ]


@pytest.mark.django_db
def test_import_view_shows_row_errors_and_writes_nothing(staff_client: Client) -> None:
    response = staff_client.post(IMPORT, {"file": csv_upload(INVALID_CSV)})

    content = response.content.decode()
    assert response.status_code == 200
    assert "1 invalid row(s); nothing was imported" in content
    assert "line 3: price: must be between 0 and 99999999.99" in content
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_import_view_names_the_line_of_the_file_as_the_command_does(staff_client: Client) -> None:
    content = "sku,name,category,price\n\nBH-RAW-001,Wildflower Honey,Raw Honey,free\n"

    response = staff_client.post(IMPORT, {"file": csv_upload(content)})

    assert "line 3: price: &#x27;free&#x27; is not a number" in response.content.decode()


@pytest.mark.django_db
def test_import_view_can_skip_invalid_rows(staff_client: Client) -> None:
    response = staff_client.post(IMPORT, {"file": csv_upload(INVALID_CSV), "skip_invalid": "on"})

    assert response.status_code == 302
    assert list(Product.objects.values_list("sku", flat=True)) == ["BH-RAW-001"]
    assert messages_of(response) == [
        "Imported catalog.csv: created 1, updated 0, unchanged 0, invalid 1;"
        " created categories: Raw Honey",
        "line 3: price: must be between 0 and 99999999.99",
    ]


@pytest.mark.django_db
def test_import_view_skipping_invalid_rows_fails_when_no_row_is_valid(
    staff_client: Client,
) -> None:
    content = INVALID_CSV.replace(",9.50,", ",free,")

    response = staff_client.post(IMPORT, {"file": csv_upload(content), "skip_invalid": "on"})

    page = response.content.decode()
    assert response.status_code == 200
    assert (
        "no row is valid (created 0, updated 0, unchanged 0, invalid 2); nothing was imported"
        in page
    )
    assert "line 2: price: &#x27;free&#x27; is not a number" in page
    assert messages_of(response) == []
    assert not Product.objects.exists()


def invalid_rows_csv(count: int) -> str:
    """A product file of ``count`` rows each with a negative price, after one valid row."""
    rows = [f"BH-BAD-{n},Honey {n},Raw Honey,-1" for n in range(count)]
    return "\n".join(["sku,name,category,price", "BH-OK-1,Honey,Raw Honey,9", *rows]) + "\n"


@pytest.mark.django_db
def test_import_view_shows_fifty_row_errors_and_counts_the_rest(staff_client: Client) -> None:
    response = staff_client.post(IMPORT, {"file": csv_upload(invalid_rows_csv(60))})

    page = response.content.decode()
    assert "60 invalid row(s); nothing was imported" in page
    assert page.count("price: must be between") == 50
    assert "and 10 more invalid row(s)" in page


@pytest.mark.django_db
def test_import_view_skipping_invalid_rows_shows_fifty_and_counts_the_rest(
    staff_client: Client,
) -> None:
    response = staff_client.post(
        IMPORT, {"file": csv_upload(invalid_rows_csv(60)), "skip_invalid": "on"}
    )

    shown = messages_of(response)
    assert shown[0].startswith(
        "Imported catalog.csv: created 1, updated 0, unchanged 0, invalid 60"
    )
    assert len(shown) == 52
    assert shown[-1] == "and 10 more invalid row(s)"


@pytest.mark.django_db
def test_import_view_files_a_product_under_a_category_named_in_another_unicode_case(
    staff_client: Client,
) -> None:
    category = CategoryFactory.create(name="istanbul pine honey")
    content = "sku,name,category,price\nBH-PINE-1,Pine Honey,\u0130stanbul Pine Honey,9\n"

    response = staff_client.post(IMPORT, {"file": csv_upload(content)})

    assert response.status_code == 302
    assert Product.objects.get(sku="BH-PINE-1").category == category


@pytest.mark.django_db
def test_import_view_skips_a_json_row_holding_a_lone_surrogate(staff_client: Client) -> None:
    rows = [
        {"sku": "BH-RAW-001", "name": "Clover \ud800Honey", "category": "Raw Honey", "price": "9"},
        {"sku": "BH-RAW-002", "name": "Heather Honey", "category": "Raw Honey", "price": "9"},
    ]
    upload = csv_upload(json.dumps(rows), name="catalog.json")  # "\ud800" as JSON escapes it

    response = staff_client.post(IMPORT, {"file": upload, "skip_invalid": "on"})

    assert response.status_code == 302
    assert list(Product.objects.values_list("sku", flat=True)) == ["BH-RAW-002"]
    assert messages_of(response)[1] == (
        "item 1: name: contains a lone surrogate (JSON's \\ud800 to \\udfff), which is no character"
    )


@pytest.mark.django_db
def test_import_view_shows_why_a_file_cannot_be_read(staff_client: Client) -> None:
    response = staff_client.post(IMPORT, {"file": csv_upload(VALID_CSV, name="catalog.xlsx")})

    assert response.status_code == 200
    assert "the file name must end in .csv or .json" in response.content.decode()
    assert not Product.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changelist_import", "command"),
    [(IMPORT, "import_catalog"), (KNOWLEDGE_IMPORT, "import_knowledge")],
)
def test_import_view_refuses_a_file_larger_than_it_imports_and_names_the_command(
    staff_client: Client, changelist_import: str, command: str
) -> None:
    header = "sku,name,category,price,description\nBH-RAW-001,Clover Honey,Raw Honey,9,"
    content = header + "x" * catalog_admin.IMPORT_MAX_BYTES

    response = staff_client.post(changelist_import, {"file": csv_upload(content)})

    form = response.context["form"]
    assert response.status_code == 200
    assert form.errors["file"] == [
        "The file is larger than 2 MB, the most the admin imports: import it with python"
        f" manage.py {command} FILE, which takes a file of any size."
    ]
    assert not Product.objects.exists()
    assert not KnowledgeArticle.objects.exists()


@pytest.mark.django_db
def test_import_view_refuses_more_rows_than_it_imports_and_names_the_command(
    staff_client: Client,
) -> None:
    rows = [f"BH-{n},Honey {n},Raw Honey,9" for n in range(catalog_admin.IMPORT_MAX_ROWS + 1)]
    content = "\n".join(["sku,name,category,price", *rows])

    response = staff_client.post(IMPORT, {"file": csv_upload(content)})

    assert response.status_code == 200
    assert (
        "the file has 5,001 rows, more than the 5,000 the admin imports: import it with"
        " python manage.py import_catalog FILE" in response.content.decode()
    )
    assert not Product.objects.exists()


KNOWLEDGE_CSV = (
    "title,topic,body\n"
    "How to store honey,storage,Keep it in a cupboard.\n"
    "Returns within 30 days,returns,Send it back unopened.\n"
)


@pytest.mark.django_db
def test_the_knowledge_import_view_names_its_columns_and_topics(staff_client: Client) -> None:
    changelist = staff_client.get(KNOWLEDGE_CHANGELIST)
    form = staff_client.get(KNOWLEDGE_IMPORT)

    content = form.content.decode()
    assert KNOWLEDGE_IMPORT in changelist.content.decode()
    assert form.status_code == 200
    assert "Columns: slug, title, topic, body, is_published." in content
    assert "topic is one of shipping, returns, storage," in content


@pytest.mark.django_db
def test_the_knowledge_import_view_loads_articles_and_redirects(staff_client: Client) -> None:
    response = staff_client.post(KNOWLEDGE_IMPORT, {"file": csv_upload(KNOWLEDGE_CSV, "faq.csv")})

    assert response.status_code == 302
    assert response["Location"] == KNOWLEDGE_CHANGELIST
    assert messages_of(response) == [
        "Imported faq.csv: created 2, updated 0, unchanged 0, invalid 0"
    ]
    assert set(KnowledgeArticle.objects.values_list("slug", flat=True)) == {
        "how-to-store-honey",
        "returns-within-30-days",
    }


@pytest.mark.django_db
def test_the_knowledge_import_view_shows_row_errors_and_writes_nothing(
    staff_client: Client,
) -> None:
    bad = KNOWLEDGE_CSV.replace("returns,Send", "recipes,Send")

    response = staff_client.post(KNOWLEDGE_IMPORT, {"file": csv_upload(bad, "faq.csv")})

    content = response.content.decode()
    assert response.status_code == 200
    assert "line 3: topic: &#x27;recipes&#x27; is not one of shipping" in content
    assert not KnowledgeArticle.objects.exists()


@pytest.mark.django_db
def test_staff_who_may_only_view_articles_cannot_import_them(client: Client) -> None:
    viewer = staff_with(client, "view_knowledgearticle")

    changelist = viewer.get(KNOWLEDGE_CHANGELIST)
    upload = viewer.post(KNOWLEDGE_IMPORT, {"file": csv_upload(KNOWLEDGE_CSV, "faq.csv")})

    assert KNOWLEDGE_IMPORT not in changelist.content.decode()
    assert upload.status_code == 403
    assert not KnowledgeArticle.objects.exists()


class _FormFields(HTMLParser):
    """What a browser submits of a page's form: each named field's value as the page shows it."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}
        self._open: tuple[str, str] | None = None  # (tag, name) of a textarea or select

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {key: value or "" for key, value in attrs}
        if tag == "input" and attr.get("name") and attr.get("type") not in ("submit", "file"):
            if attr.get("type") != "checkbox" or "checked" in attr:
                self.data[attr["name"]] = attr.get("value", "on")
        elif tag in ("textarea", "select") and attr.get("name"):
            self._open = (tag, attr["name"])
            self.data[attr["name"]] = ""
        elif tag == "option" and self._open and "selected" in attr:
            self.data[self._open[1]] = attr.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._open and self._open[0] == "textarea":
            self.data[self._open[1]] += data

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag == self._open[0]:
            self._open = None


def submitted_form(page: str) -> dict[str, str]:
    fields = _FormFields()
    fields.feed(page)
    return {name: value.removeprefix("\n") for name, value in fields.data.items()}


def with_passages(article: KnowledgeArticle, *texts: str) -> KnowledgeArticle:
    for position, text in enumerate(texts):
        KnowledgePassage.objects.create(
            article=article, position=position, text=text, embedding=A_VECTOR
        )
    return article


@pytest.mark.django_db
def test_an_articles_page_shows_the_passages_the_search_reads_to_whoever_may_view_it(
    client: Client,
) -> None:
    article = with_passages(
        KnowledgeArticleFactory.create(title="Delivery abroad"),
        "Delivery abroad",
        "We ship to BFPO addresses.",
    )
    viewer = staff_with(client, "view_knowledgearticle")

    page = viewer.get(reverse("admin:catalog_knowledgearticle_change", args=[article.pk]))

    content = page.content.decode()
    assert page.status_code == 200
    assert "Passages the search reads (as last embedded)" in content
    assert "We ship to BFPO addresses." in content
    assert "paragraph 1" in content


@pytest.mark.django_db
def test_staff_save_an_article_as_the_browser_posts_it_and_its_passages_stay_as_embedded(
    client: Client, django_capture_on_commit_callbacks
) -> None:
    article = with_passages(KnowledgeArticleFactory.create(body="Old body."), "Title", "Old body.")
    manager = staff_with(client, *CATALOG_MANAGER_PERMISSIONS)
    change = reverse("admin:catalog_knowledgearticle_change", args=[article.pk])
    form = submitted_form(manager.get(change).content.decode())

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = manager.post(change, form | {"body": "New body."})

    assert response.status_code == 302, response.context["errors"] if response.context else ""
    article.refresh_from_db()
    assert article.body == "New body."
    # The embedding task rewrites them, with the article's new vector (test_services).
    assert [p.text for p in article.passages.all()] == ["Title", "Old body."]
    assert len(callbacks) == 1


# --- export -----------------------------------------------------------------------------------


def exported(response) -> tuple[str, list[dict[str, Any]]]:
    """The exported file's name and its rows, as an import reads them back."""
    disposition = response["Content-Disposition"]
    name = disposition.split('filename="')[1].rstrip('"')
    content = b"".join(response.streaming_content)
    return name, read_catalog_file(io.BytesIO(content), name, columns=columns_of(name))


def columns_of(name: str) -> FileColumns:
    return KNOWLEDGE_COLUMNS if name.startswith("knowledgearticle") else PRODUCT_COLUMNS


@pytest.mark.django_db
def test_exported_products_import_back_unchanged(staff_client: Client) -> None:
    first = ProductFactory.create(tags=["raw", "gift"], description='Rich, dark; "smoky".\nSet.')
    second = ProductFactory.create(tags=[])
    ProductFactory.create()  # not selected

    response = staff_client.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [first.pk, second.pk]}
    )

    name, rows = exported(response)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r"product-\d{8}-\d{6}\.csv", name)
    assert [row["sku"] for row in rows] == [first.sku, second.sku]
    assert (rows[0]["tags"], rows[0]["description"]) == ("raw;gift", first.description)
    assert product_import(rows=rows).summary() == "created 0, updated 0, unchanged 2, invalid 0"


@pytest.mark.django_db
def test_products_stored_before_the_sku_and_currency_checks_export_and_import_back(
    staff_client: Client,
) -> None:
    spaced = ProductFactory.create(currency="GBP")
    withdrawn = ProductFactory.create(currency="GBP")
    # As stored before migration 0007 (the sku's format) and 0013 (currencies in circulation):
    # the API and the admin keep such values until they change.
    Product.objects.filter(pk=spaced.pk).update(sku="BH 001")
    Product.objects.filter(pk=withdrawn.pk).update(currency="BGN")

    response = staff_client.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [spaced.pk, withdrawn.pk]}
    )
    rows = exported(response)[1]
    spaced_row, withdrawn_row = sorted(rows, key=lambda row: row["sku"] != "BH 001")
    unchanged = product_import(rows=rows).summary()
    repriced = product_import(rows=[row | {"price": "99.00"} for row in rows]).summary()

    assert unchanged == "created 0, updated 0, unchanged 2, invalid 0"
    assert repriced == "created 0, updated 2, unchanged 0, invalid 0"
    assert set(Product.objects.values_list("price", flat=True)) == {Decimal("99.00")}
    # A new product's sku, and a changed currency, are checked as ever.
    with pytest.raises(services.CatalogImportError) as refused:
        product_import(rows=[spaced_row | {"sku": "BH 002"}, withdrawn_row | {"currency": "HRK"}])
    assert refused.value.report.errors == [
        "item 1: sku: letters, digits, '.', '_' or '-', at most 40 characters",
        "item 2: currency: HRK is not the ISO 4217 code of a currency in circulation, such as GBP",
    ]


@pytest.mark.django_db
def test_an_export_opens_in_a_spreadsheet_as_text_and_still_imports_back_unchanged(
    staff_client: Client,
) -> None:
    formula = '=HYPERLINK("http://example.com","Click")'
    product = ProductFactory.create(description=formula, origin="-5°C cellar, Mānuka", tags=["@x"])

    response = staff_client.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [product.pk]}
    )

    content = response.getvalue()
    text = content.decode("utf-8")
    assert text.startswith("\ufeffsku,")  # Excel reads UTF-8 only behind a byte order mark
    line = next(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert (line["description"], line["origin"], line["tags"]) == (
        f"'{formula}",
        "'-5°C cellar, Mānuka",
        "'@x",
    )
    rows = read_catalog_file(io.BytesIO(content), "products.csv", columns=PRODUCT_COLUMNS)
    assert (rows[0]["description"], rows[0]["origin"]) == (formula, product.origin)
    assert product_import(rows=rows).summary() == "created 0, updated 0, unchanged 1, invalid 0"


@pytest.mark.django_db
def test_a_value_stored_behind_an_apostrophe_before_a_formula_start_imports_back_unchanged(
    staff_client: Client,
) -> None:
    # Saved so through the API or this admin: an import would take that apostrophe off.
    product = ProductFactory.create(description="'-- see label", origin="'=x")

    response = staff_client.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [product.pk]}
    )

    _, rows = exported(response)
    assert (rows[0]["description"], rows[0]["origin"]) == ("'-- see label", "'=x")
    assert product_import(rows=rows).summary() == "created 0, updated 0, unchanged 1, invalid 0"


@pytest.mark.django_db
def test_exported_articles_import_back_unchanged(staff_client: Client) -> None:
    published = KnowledgeArticleFactory.create(body="Line one,\nline two.")
    draft = KnowledgeArticleFactory.create(is_published=False)

    response = staff_client.post(
        KNOWLEDGE_CHANGELIST,
        {"action": "export_csv", "_selected_action": [published.pk, draft.pk]},
    )

    _, rows = exported(response)
    assert [(row["slug"], row["is_published"]) for row in rows] == [
        (published.slug, "true"),
        (draft.slug, "false"),
    ]
    assert knowledge_import(rows=rows).summary() == "created 0, updated 0, unchanged 2, invalid 0"


@pytest.mark.django_db
def test_the_embedding_column_marks_a_row_whose_text_changed_since_it_was_embedded() -> None:
    product = ProductFactory.create(embedding=A_VECTOR, embedding_model=CURRENT)
    product.embedding_text_hash = text_hash(product.embedding_text())
    model_admin = admin.site._registry[Product]
    assert isinstance(model_admin, ProductAdmin)
    column = model_admin.embedding_ok

    assert column(product) is True
    product.description = "Now with chilli."
    assert column(product) is False


# --- actions ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_re_embed_action_queues_the_selected_rows_and_says_so(
    staff_client: Client, products: dict[str, Product], test_broker_url: str
) -> None:
    selected = [products["current"].pk, products["other"].pk]
    queue = new_queue_name("re-embed")

    with tasks_sent_to(queue):
        response = staff_client.post(
            CHANGELIST, {"action": "re_embed", "_selected_action": selected}
        )

    assert response.status_code == 302
    assert messages_of(response) == ["Queued 2 row(s) for embedding."]
    broker = redis.Redis.from_url(test_broker_url)
    assert broker.llen(queue + settings.BACKGROUND_QUEUE_SUFFIX) == 1  # one task, of both rows
    broker.delete(queue + settings.BACKGROUND_QUEUE_SUFFIX)


@pytest.mark.django_db
def test_re_embed_action_says_so_when_the_task_queue_cannot_be_reached(
    staff_client: Client, products: dict[str, Product]
) -> None:
    selected = [products["current"].pk, products["other"].pk]

    with producing_to_broker(f"redis://127.0.0.1:{free_port()}/0"):
        response = staff_client.post(
            CHANGELIST, {"action": "re_embed", "_selected_action": selected}
        )

    assert response.status_code == 302
    assert messages_of(response) == [
        "Queued 0 of 2 row(s) for embedding: the task queue cannot be reached. Try again, or"
        " run backfill_embeddings --force."
    ]


@pytest.mark.django_db
def test_saving_an_article_in_the_admin_queues_its_embedding(
    staff_client: Client, django_capture_on_commit_callbacks
) -> None:
    data = {"title": "Storing honey", "slug": "storing-honey", "topic": "storage", "body": "Cool."}
    data["is_published"] = "on"

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(reverse("admin:catalog_knowledgearticle_add"), data)

    assert response.status_code == 302
    assert KnowledgeArticle.objects.get().slug == "storing-honey"
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_adding_a_product_in_the_admin_normalises_tags_and_queues_its_embedding(
    staff_client: Client, django_capture_on_commit_callbacks
) -> None:
    data = product_form_data(CategoryFactory.create())

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(reverse("admin:catalog_product_add"), data)

    assert response.status_code == 302
    assert Product.objects.get(sku="BH-ADM-001").tags == ["spicy", "hot"]
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_the_admin_refuses_more_than_twenty_tags_at_the_field(staff_client: Client) -> None:
    tags = ",".join(f"t{n}" for n in range(21))

    response = staff_client.post(
        reverse("admin:catalog_product_add"), product_form_data(CategoryFactory.create(), tags=tags)
    )

    assert response.status_code == 200
    assert "tags" in response.context["adminform"].form.errors
    assert not Product.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("tags", "error"),
    [
        ("ok,x;y", "“x;y”: a tag cannot hold ',' or ';'"),
        ("ok,a\x00b", "“a\x00b”: Null characters are not allowed."),
        (
            f"ok, {'x' * 41}",
            f"“{'x' * 41}”: Ensure this value has at most 40 characters (it has 41).",
        ),
    ],
)
def test_the_product_form_names_a_refused_tag_with_the_whole_reason(
    staff_client: Client, tags: str, error: str
) -> None:
    data = product_form_data(CategoryFactory.create(), tags=tags)

    response = staff_client.post(reverse("admin:catalog_product_add"), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"tags": [error]}
    assert not Product.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "written", "error"),
    [
        ("price", "1e3", "Enter a number."),
        ("price", "1_000", "Enter a number."),
        ("price", "\u0663", "Enter a number."),
        ("stock", "5.0", "Enter a whole number."),
        ("weight_grams", "3e2", "Enter a whole number."),
    ],
)
def test_the_product_form_refuses_a_number_the_api_and_the_imports_refuse(
    staff_client: Client, field: str, written: str, error: str
) -> None:
    data = product_form_data(CategoryFactory.create(), **{field: written})

    response = staff_client.post(reverse("admin:catalog_product_add"), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {field: [error]}
    assert not Product.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("tags", ["spicy, hot,", "spicy,, hot", " , spicy, hot"])
def test_the_product_form_drops_blank_tags_as_the_model_does(
    staff_client: Client, tags: str
) -> None:
    data = product_form_data(CategoryFactory.create(), tags=tags)

    response = staff_client.post(reverse("admin:catalog_product_add"), data)

    assert response.status_code == 302
    assert Product.objects.get().tags == ["spicy", "hot"]


@pytest.mark.django_db
@pytest.mark.parametrize(("changes", "queued"), [({"name": "Seasonal Specials"}, 1), ({}, 0)])
def test_renaming_a_category_in_the_admin_queues_its_products_embedding(
    staff_client: Client, django_capture_on_commit_callbacks, changes: dict[str, str], queued: int
) -> None:
    category = CategoryFactory.create(name="Raw Honey", slug="raw-honey")
    ProductFactory.create_batch(2, category=category)
    data = {"name": category.name, "slug": category.slug} | changes

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(
            reverse("admin:catalog_category_change", args=[category.pk]), data
        )

    assert response.status_code == 302
    assert Category.objects.get(pk=category.pk).name == data["name"]
    assert len(callbacks) == queued


@pytest.mark.django_db
def test_a_category_added_in_the_admin_keeps_one_space_where_its_name_had_a_run(
    staff_client: Client,
) -> None:
    CategoryFactory.create(name="Raw Honey", slug="raw-honey")
    add_url = reverse("admin:catalog_category_add")

    added = staff_client.post(add_url, {"name": "Comb \t Honey", "slug": "comb-honey"})
    refused = staff_client.post(add_url, {"name": "Raw  Honey", "slug": "raw-honey-2"})

    assert added.status_code == 302
    assert Category.objects.get(slug="comb-honey").name == "Comb Honey"
    assert refused.status_code == 200
    assert refused.context["adminform"].form.non_field_errors() == [
        "A category with this name already exists."
    ]
    assert Category.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("sku", ["a/b", "a b"])
def test_the_admin_refuses_a_sku_the_api_url_cannot_reach(staff_client: Client, sku: str) -> None:
    data = product_form_data(CategoryFactory.create(), sku=sku)

    response = staff_client.post(reverse("admin:catalog_product_add"), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["sku"] == [
        "letters, digits, '.', '_' or '-', at most 40 characters"
    ]
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_staff_who_may_only_view_products_cannot_re_embed_them(
    client: Client, products: dict[str, Product], django_capture_on_commit_callbacks
) -> None:
    viewer = staff_with(client, "view_product")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        viewer.post(CHANGELIST, {"action": "re_embed", "_selected_action": [products["other"].pk]})

    assert callbacks == []
    assert "re_embed" not in viewer.get(CHANGELIST).content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "stored",
    [
        {"sku": "HB 001"},  # before migration 0007 checked skus
        {"currency": "BGN"},  # withdrawn since migration 0013 checked currencies
    ],
)
def test_a_product_whose_sku_or_currency_predates_its_rule_can_be_saved_in_the_admin(
    staff_client: Client, stored: dict[str, str]
) -> None:
    product = ProductFactory.create(slug="hb-001", **stored)
    change = reverse("admin:catalog_product_change", args=[product.pk])
    form = submitted_form(staff_client.get(change).content.decode())

    saved = staff_client.post(change, form | {"price": "7.50"})
    changed_to_another = staff_client.post(change, form | {"sku": "HB 002", "currency": "HRK"})

    assert saved.status_code == 302
    assert Product.objects.get(pk=product.pk).price == Decimal("7.50")
    assert changed_to_another.status_code == 200  # the form again, with its errors
    errors = changed_to_another.context["adminform"].form.errors
    assert set(errors) == {"sku", "currency"}


def recording(calls: list[dict[str, Any]], service: Any) -> Any:
    """``service``, which also records in ``calls`` what it was given."""

    def recorded(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return service(**kwargs)

    return recorded


@pytest.mark.django_db
def test_a_product_page_saves_what_it_changed_through_product_update(
    staff_client: Client, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    product = ProductFactory.create(price=Decimal("9.50"), stock=10)
    change = reverse("admin:catalog_product_change", args=[product.pk])
    form = submitted_form(staff_client.get(change).content.decode())
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(catalog_admin, "product_update", recording(calls, services.product_update))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(change, form | {"price": "8.75"})

    assert response.status_code == 302
    assert [(call["product"].pk, call["update_fields"]) for call in calls] == [
        (product.pk, ["price"])
    ]
    assert Product.objects.values_list("price", "stock").get() == (Decimal("8.75"), 10)
    assert len(callbacks) == 1  # its embedding, queued once


@pytest.mark.django_db
def test_an_article_page_saves_what_it_changed_through_knowledge_article_update(
    staff_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    article = KnowledgeArticleFactory.create(body="Old body.")
    change = reverse("admin:catalog_knowledgearticle_change", args=[article.pk])
    form = submitted_form(staff_client.get(change).content.decode())
    calls: list[dict[str, Any]] = []
    update = recording(calls, services.knowledge_article_update)
    monkeypatch.setattr(catalog_admin, "knowledge_article_update", update)

    response = staff_client.post(change, form | {"body": "New body."})

    assert response.status_code == 302
    assert [(call["article"].pk, call["update_fields"]) for call in calls] == [
        (article.pk, ["body"])
    ]
    article.refresh_from_db()
    assert (article.title, article.body) == (form["title"], "New body.")


@pytest.mark.django_db
def test_saving_a_product_page_that_changed_nothing_writes_and_queues_nothing(
    staff_client: Client, django_capture_on_commit_callbacks
) -> None:
    product = ProductFactory.create()
    change = reverse("admin:catalog_product_change", args=[product.pk])
    form = submitted_form(staff_client.get(change).content.decode())

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(change, form)

    assert response.status_code == 302
    assert Product.objects.get().updated_at == product.updated_at
    assert callbacks == []


@pytest.mark.django_db(transaction=True)
def test_a_product_page_saved_as_a_colleague_deletes_the_product_says_so_and_saves_nothing(
    staff_client: Client,
) -> None:
    product = ProductFactory.create(price=Decimal("9.50"))
    change = reverse("admin:catalog_product_change", args=[product.pk])
    form = submitted_form(staff_client.get(change).content.decode())

    with saved_meanwhile(Product.objects.filter(pk=product.pk).delete):
        response = staff_client.post(change, form | {"price": "8.75"}, follow=True)

    assert response.redirect_chain == [(reverse("admin:catalog_product_changelist"), 302)]
    assert messages_of(response) == [
        "This product was deleted while you were editing it: nothing was saved."
    ]
    assert not Product.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_product_added_with_a_sku_a_colleague_saved_meanwhile_is_refused_at_the_field(
    staff_client: Client,
) -> None:
    category = CategoryFactory.create()

    with saved_meanwhile(lambda: ProductFactory.create(sku="BH-ADM-001", category=category)):
        response = staff_client.post(
            reverse("admin:catalog_product_add"), product_form_data(category)
        )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "sku": ["Product with this Sku already exists."]
    }
    assert Product.objects.get().slug != "hot-honey"  # the colleague's alone


@pytest.mark.django_db(transaction=True)
def test_a_product_given_a_sku_a_colleague_saved_meanwhile_is_refused_at_the_field(
    staff_client: Client,
) -> None:
    product = ProductFactory.create(sku="BH-OLD-001")
    change = reverse("admin:catalog_product_change", args=[product.pk])
    form = submitted_form(staff_client.get(change).content.decode())

    with saved_meanwhile(lambda: ProductFactory.create(sku="BH-NEW-001")):
        response = staff_client.post(change, form | {"sku": "BH-NEW-001"})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "sku": ["Product with this Sku already exists."]
    }
    assert Product.objects.get(pk=product.pk).sku == "BH-OLD-001"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("model", "data", "made"),
    [
        (
            "category",
            {"name": "Hot Honey", "slug": "hot-honey"},
            lambda: CategoryFactory.create(name="Hot Honey Gifts", slug="hot-honey"),
        ),
        (
            "knowledgearticle",
            {"title": "Storage", "slug": "storage", "topic": "storage", "body": "Cool."},
            lambda: KnowledgeArticleFactory.create(slug="storage"),
        ),
    ],
)
def test_a_row_added_with_a_slug_a_colleague_saved_meanwhile_is_refused_at_the_field(
    staff_client: Client, model: str, data: dict[str, str], made: Callable[[], object]
) -> None:
    with saved_meanwhile(made):
        response = staff_client.post(reverse(f"admin:catalog_{model}_add"), data)

    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["slug"]


def _category_deleted_on_its_page(client: Client, category: Category, *, confirmed: bool):
    url = reverse("admin:catalog_category_delete", args=[category.pk])
    return client.post(url, {"post": "yes"}) if confirmed else client.get(url)


def _categories_deleted_from_the_list(client: Client, category: Category, *, confirmed: bool):
    data = {"action": "delete_selected", "_selected_action": category.pk}
    confirmation = {"post": "yes"} if confirmed else {}
    return client.post(reverse("admin:catalog_category_changelist"), data | confirmation)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "deleted",
    [_category_deleted_on_its_page, _categories_deleted_from_the_list],
    ids=["its page", "the list"],
)
def test_a_category_with_products_names_a_few_of_them_on_its_delete_page_and_stays(
    staff_client: Client, deleted: Callable[..., Any]
) -> None:
    category = CategoryFactory.create()
    products = ProductFactory.create_batch(23, category=category)

    page = deleted(staff_client, category, confirmed=False)
    confirmed = deleted(staff_client, category, confirmed=True)

    listed = [str(row) for row in page.context["protected"]]
    first = reverse("admin:catalog_product_change", args=[products[0].pk])
    assert listed[0] == f'Product: <a href="{first}">{products[0]}</a>'
    assert (len(listed), listed[-1]) == (21, "… and 3 more")
    assert confirmed.status_code == 200  # the same refusal, not a redirect
    assert Category.objects.filter(pk=category.pk).exists()


@pytest.mark.django_db
def test_a_category_without_products_is_deleted_from_its_page(staff_client: Client) -> None:
    category = CategoryFactory.create()
    url = reverse("admin:catalog_category_delete", args=[category.pk])

    page = staff_client.get(url)
    response = staff_client.post(url, {"post": "yes"})

    assert page.context["protected"] == []
    assert response.status_code == 302
    assert not Category.objects.exists()


@pytest.mark.django_db
def test_an_action_on_a_selected_id_that_is_not_one_is_a_400(staff_client: Client) -> None:
    ProductFactory.create()

    response = staff_client.post(
        reverse("admin:catalog_product_changelist"),
        {"action": "re_embed", "_selected_action": ["abc"]},
    )

    assert response.status_code == 400


# --- values the constraints refuse ------------------------------------------------------------

NOT_NEGATIVE = "Ensure this value is greater than or equal to 0."
NOT_A_CURRENCY = "a 3-letter ISO currency code in capitals, such as GBP"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("stock", "-1", NOT_NEGATIVE),
        ("price", "-1", NOT_NEGATIVE),
        ("currency", "gbp", NOT_A_CURRENCY),
        (
            "currency",
            "GPB",
            "GPB is not the ISO 4217 code of a currency in circulation, such as GBP",
        ),
    ],
)
def test_the_product_form_shows_a_value_the_constraints_refuse_at_its_field(
    staff_client: Client, field: str, value: str, message: str
) -> None:
    product = ProductFactory.create(stock=4, price=Decimal("9.50"))
    data = product_form_data(product.category, sku=product.sku, slug=product.slug)

    response = staff_client.post(
        reverse("admin:catalog_product_change", args=[product.pk]), data | {field: value}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {field: [message]}
    assert Product.objects.values_list("stock", "price", "currency").get() == (
        4,
        Decimal("9.50"),
        "GBP",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value"), [("stock", "-1"), ("price", "-1")])
def test_the_product_list_shows_a_value_the_constraints_refuse_at_its_field(
    staff_client: Client, field: str, value: str
) -> None:
    product = ProductFactory.create(stock=4, price=Decimal("9.50"))
    row = {"id": product.pk, "price": "9.50", "stock": "4", "is_active": "on"} | {field: value}
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "_save": "Save",
        **{f"form-0-{name}": value for name, value in row.items()},
    }

    response = staff_client.post(CHANGELIST, data)

    assert response.status_code == 200
    assert response.context["cl"].formset.errors == [{field: [NOT_NEGATIVE]}]
    assert Product.objects.values_list("stock", "price").get() == (4, Decimal("9.50"))


# --- values saved by others while a page was open -----------------------------------------------


def row_prefix(form: dict[str, str], product: Product) -> str:
    """The prefix (``form-3``) of ``product``'s row in the product list's posted form."""
    return next(
        name.removesuffix("-id")
        for name, value in form.items()
        if name.startswith("form-") and name.endswith("-id") and value == str(product.pk)
    )


@pytest.mark.django_db
def test_saving_the_product_list_keeps_the_stock_others_saved_since_it_was_shown(
    staff_client: Client,
) -> None:
    edited = ProductFactory.create(name="Acacia Honey", price=Decimal("9.50"), stock=10)
    untouched = ProductFactory.create(name="Borage Honey", price=Decimal("6.00"), stock=10)
    form = submitted_form(staff_client.get(CHANGELIST).content.decode())
    # Orders placed through the API while the page was open.
    Product.objects.filter(pk__in=[edited.pk, untouched.pk]).update(stock=3)

    response = staff_client.post(
        CHANGELIST, form | {f"{row_prefix(form, edited)}-price": "8.75", "_save": "Save"}
    )

    assert response.status_code == 302
    assert Product.objects.values_list("price", "stock").get(pk=edited.pk) == (Decimal("8.75"), 3)
    assert Product.objects.values_list("price", "stock").get(pk=untouched.pk) == (
        Decimal("6.00"),
        3,
    )


@pytest.mark.django_db
def test_saving_a_product_page_keeps_the_values_others_saved_since_it_was_shown(
    staff_client: Client, django_capture_on_commit_callbacks
) -> None:
    product = ProductFactory.create(price=Decimal("9.50"), stock=10, is_active=True)
    change = reverse("admin:catalog_product_change", args=[product.pk])
    form = submitted_form(staff_client.get(change).content.decode())
    Product.objects.filter(pk=product.pk).update(price=Decimal("9.00"), stock=3, is_active=False)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(change, form | {"description": "Now with chilli."})

    assert response.status_code == 302
    assert Product.objects.values_list("description", "price", "stock", "is_active").get() == (
        "Now with chilli.",
        Decimal("9.00"),
        3,
        False,
    )
    assert len(callbacks) == 1  # its embedding, the description having changed


@pytest.mark.django_db
def test_saving_a_category_page_keeps_the_values_others_saved_since_it_was_shown(
    staff_client: Client, django_capture_on_commit_callbacks
) -> None:
    category = CategoryFactory.create(name="Raw Honey", slug="raw-honey", description="Raw.")
    product = ProductFactory.create(category=category)
    change = reverse("admin:catalog_category_change", args=[category.pk])
    form = submitted_form(staff_client.get(change).content.decode())
    # An API PATCH while the page was open.
    Category.objects.filter(pk=category.pk).update(description="Unheated, from Kent.")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(change, form | {"name": "Raw & Unheated Honey"})

    assert response.status_code == 302
    assert Category.objects.values_list("name", "slug", "description").get() == (
        "Raw & Unheated Honey",
        "raw-honey",
        "Unheated, from Kent.",
    )
    assert len(callbacks) == 1  # its products' embeddings, which name it
    assert Product.objects.get(pk=product.pk).updated_at > product.updated_at
