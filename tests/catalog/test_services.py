from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import openai
import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog import services
from catalog.embeddings import (
    EmbeddingSizeError,
    current_model_name,
    get_embedding_backend,
    text_hash,
)
from catalog.models import (
    EMBEDDING_DIMENSIONS,
    Category,
    KnowledgeArticle,
    KnowledgePassage,
    Product,
)
from catalog.services import (
    CatalogImportError,
    EmbeddingReport,
    _unique_slug,
    category_renamed,
    embeddings_refresh,
    knowledge_article_update,
    knowledge_import,
    product_create,
    product_import,
    product_update,
)
from tests.catalog.factories import CategoryFactory, KnowledgeArticleFactory, ProductFactory
from tests.catalog.search_support import PRODUCT_HNSW_INDEXES, hnsw_indexes_missing
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.transactions import saved_meanwhile


def catalog_rows() -> list[dict[str, str]]:
    return [
        {
            "sku": "BH-RAW-001",
            "name": "Wildflower Raw Honey 500g",
            "category": "Raw Honey",
            "price": "9.50",
            "stock": "184",
            "tags": "raw;british",
        },
        {
            "sku": "BH-RAW-003",
            "name": "Buckwheat Raw Honey 340g",
            "category": "Raw Honey",
            "price": "8.95",
            "stock": "63",
        },
        {
            "sku": "BH-WAX-001",
            "name": "Beeswax Food Wraps Set of 3",
            "category": "Beeswax Goods",
            "price": "15.95",
            "stock": "165",
        },
    ]


class Interrupted(Exception):
    pass


def interrupt(done: int, total: int) -> None:
    raise Interrupted


# --- product_import ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_import_creates_products_and_their_categories() -> None:
    rows = catalog_rows()

    report = product_import(rows=rows)

    assert (report.created, report.updated, report.unchanged, report.invalid) == (3, 0, 0, 0)
    assert set(Category.objects.values_list("name", "slug")) == {
        ("Raw Honey", "raw-honey"),
        ("Beeswax Goods", "beeswax-goods"),
    }
    honey = Product.objects.get(sku="BH-RAW-001")
    assert honey.category.name == "Raw Honey"
    assert honey.slug == "wildflower-raw-honey-500g"
    assert honey.price == Decimal("9.50")
    assert honey.tags == ["raw", "british"]


@pytest.mark.django_db
def test_import_reuses_an_existing_category_whatever_its_case() -> None:
    category = CategoryFactory.create(name="Raw Honey", slug="raw-honey")
    rows = [{**catalog_rows()[0], "category": "raw HONEY"}]

    product_import(rows=rows)

    assert Product.objects.get(sku="BH-RAW-001").category == category
    assert Category.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("existing", "given"),
    [("istanbul pine honey", "\u0130stanbul Pine Honey"), ("kiwi", "\u212aiwi")],
    ids=["dotted capital I", "Kelvin sign"],
)
def test_import_reuses_a_category_whose_name_differs_only_by_unicode_case(
    existing: str, given: str
) -> None:
    category = CategoryFactory.create(name=existing)
    rows = [{**catalog_rows()[0], "category": given}]

    report = product_import(rows=rows)

    assert report.created == 1
    assert Product.objects.get(sku="BH-RAW-001").category == category
    assert Category.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("given", ["raw-honey", "RAW-HONEY"])
def test_import_finds_a_category_by_its_slug(given: str) -> None:
    category = CategoryFactory.create(name="Raw Honey", slug="raw-honey")
    rows = [{**catalog_rows()[0], "category": given}]

    report = product_import(rows=rows)

    assert Product.objects.get(sku="BH-RAW-001").category == category
    assert Category.objects.count() == 1
    assert report.created_categories == []


@pytest.mark.django_db
def test_a_category_is_found_by_its_name_before_another_by_its_slug() -> None:
    CategoryFactory.create(name="Gift Sets", slug="mead")
    mead = CategoryFactory.create(name="Mead", slug="honey-wine")
    rows = [{**catalog_rows()[0], "category": "mead"}]

    product_import(rows=rows)

    assert Product.objects.get(sku="BH-RAW-001").category == mead


@pytest.mark.django_db
def test_the_import_summary_names_the_categories_it_created() -> None:
    CategoryFactory.create(name="Raw Honey", slug="raw-honey")

    report = product_import(rows=catalog_rows())

    assert report.created_categories == ["Beeswax Goods"]
    assert report.summary() == (
        "created 3, updated 0, unchanged 0, invalid 0; created categories: Beeswax Goods"
    )


def test_the_import_summary_names_ten_created_categories_and_counts_the_rest() -> None:
    report = services.ImportReport(created=12, created_categories=[f"C{n}" for n in range(12)])

    assert report.summary() == (
        "created 12, updated 0, unchanged 0, invalid 0;"
        " created categories: C0, C1, C2, C3, C4, C5, C6, C7, C8, C9 and 2 more"
    )


@pytest.mark.django_db
def test_reimport_counts_created_updated_and_unchanged_rows() -> None:
    product_import(rows=catalog_rows())
    rows = catalog_rows()
    rows[1]["price"] = "9.25"
    rows.append(
        {"sku": "BH-NEW-001", "name": "Clover Honey", "category": "Raw Honey", "price": "8"}
    )

    report = product_import(rows=rows)

    assert (report.created, report.updated, report.unchanged, report.invalid) == (1, 1, 2, 0)
    assert report.summary() == "created 1, updated 1, unchanged 2, invalid 0"
    assert Product.objects.get(sku="BH-RAW-003").price == Decimal("9.25")


@pytest.mark.django_db
def test_import_writes_nothing_when_any_row_is_invalid() -> None:
    rows = catalog_rows()
    rows[1]["price"] = "-1"

    with pytest.raises(CatalogImportError) as excinfo:
        product_import(rows=rows)

    assert str(excinfo.value) == "1 invalid row(s); nothing was imported"
    assert excinfo.value.report.errors == ["item 2: price: must be between 0 and 99999999.99"]
    assert Product.objects.count() == 0
    assert Category.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["蜂蜜", "???"])
def test_import_refuses_a_new_category_whose_name_makes_no_slug(name: str) -> None:
    # It used to be created with the slug "category": the API asks for a slug instead.
    rows = catalog_rows()
    rows[1]["category"] = name

    with pytest.raises(CatalogImportError) as excinfo:
        product_import(rows=rows)

    assert excinfo.value.report.errors == [
        f"item 2: category: {name!r} would be a new category, and its name has no ASCII letters"
        " or digits to make its slug of: create it with a slug first (admin or API)"
    ]
    assert not Product.objects.exists()
    assert not Category.objects.exists()


@pytest.mark.django_db
def test_import_files_products_under_a_category_of_that_name_made_with_a_slug() -> None:
    honey = CategoryFactory.create(name="蜂蜜", slug="fengmi")
    rows = [{**catalog_rows()[0], "category": "蜂蜜"}]

    report = product_import(rows=rows)

    assert (report.created, report.created_categories) == (1, [])
    assert Product.objects.get(sku="BH-RAW-001").category == honey


@pytest.mark.django_db
def test_import_with_skip_invalid_loads_the_good_rows_and_counts_the_bad() -> None:
    rows = catalog_rows()
    rows[1]["stock"] = "-5"

    report = product_import(rows=rows, skip_invalid=True)

    assert (report.created, report.invalid) == (2, 1)
    assert report.errors == ["item 2: stock: must not be negative"]
    assert set(Product.objects.values_list("sku", flat=True)) == {"BH-RAW-001", "BH-WAX-001"}


@pytest.mark.django_db
def test_import_with_skip_invalid_fails_when_no_row_is_valid() -> None:
    rows = catalog_rows()
    for row in rows:
        row["price"] = "free"

    with pytest.raises(CatalogImportError) as excinfo:
        product_import(rows=rows, skip_invalid=True)

    assert str(excinfo.value) == (
        "no row is valid (created 0, updated 0, unchanged 0, invalid 3); nothing was imported"
    )
    assert len(excinfo.value.report.errors) == 3
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_import_gives_a_product_whose_name_is_taken_a_slug_ending_in_its_sku() -> None:
    ProductFactory.create(name="Clover Honey", slug="clover-honey")
    rows = [{"sku": "BH-CLV-9", "name": "Clover Honey", "category": "Raw Honey", "price": "8"}]

    product_import(rows=rows)

    assert Product.objects.get(sku="BH-CLV-9").slug == "clover-honey-bh-clv-9"


@pytest.mark.django_db
def test_reimporting_some_columns_leaves_the_others_as_they_are() -> None:
    full = {**catalog_rows()[0], "description": "Spring blossom.", "origin": "Kent"}
    product_import(rows=[full])
    prices = [{"sku": "BH-RAW-001", "name": full["name"], "category": "Raw Honey", "price": "9.95"}]

    report = product_import(rows=prices)

    after = Product.objects.get(sku="BH-RAW-001")
    assert report.updated == 1
    assert after.price == Decimal("9.95")
    assert (after.stock, after.tags) == (184, ["raw", "british"])
    assert (after.description, after.origin) == ("Spring blossom.", "Kent")


@pytest.mark.django_db
def test_reimporting_an_empty_text_value_clears_it() -> None:
    product_import(rows=catalog_rows())
    row = {**catalog_rows()[0], "tags": "", "origin": ""}

    product_import(rows=[row])

    product = Product.objects.get(sku="BH-RAW-001")
    assert (product.tags, product.origin) == ([], "")


@pytest.mark.django_db
def test_reimporting_a_blank_stock_weight_or_currency_keeps_the_value() -> None:
    product_import(rows=[{**catalog_rows()[0], "currency": "EUR", "weight_grams": "500"}])
    row = {**catalog_rows()[0], "price": "9.95", "stock": " ", "weight_grams": "", "currency": ""}

    report = product_import(rows=[row])

    product = Product.objects.get(sku="BH-RAW-001")
    assert report.updated == 1
    assert (product.price, product.stock) == (Decimal("9.95"), 184)
    assert (product.weight_grams, product.currency) == (500, "EUR")


@pytest.mark.django_db
def test_importing_a_new_product_with_blank_stock_weight_and_currency_takes_the_defaults() -> None:
    row = {**catalog_rows()[0], "stock": "", "weight_grams": "", "currency": ""}

    product_import(rows=[row])

    product = Product.objects.get(sku="BH-RAW-001")
    assert (product.stock, product.weight_grams, product.currency) == (0, 0, "GBP")


@pytest.mark.django_db
def test_reimport_moves_a_product_to_another_category_creating_it() -> None:
    product_import(rows=catalog_rows())
    row = {**catalog_rows()[0], "category": "Gift Sets"}

    report = product_import(rows=[row])

    assert report.updated == 1
    assert Product.objects.get(sku="BH-RAW-001").category.name == "Gift Sets"


@pytest.mark.django_db
def test_import_gives_long_names_that_share_their_first_200_characters_distinct_slugs() -> None:
    name = "Raw Honey " * 20
    rows = [
        {"sku": f"BH-LONG-{'0' * 30}{n}", "name": name, "category": "Raw Honey", "price": "8"}
        for n in (1, 2, 3)
    ]

    product_import(rows=rows)

    slugs = list(Product.objects.values_list("slug", flat=True))
    assert len(set(slugs)) == 3
    assert all(len(slug) <= 220 and not slug.endswith("-") for slug in slugs)


@pytest.mark.django_db
def test_import_gives_skus_that_differ_only_in_case_distinct_slugs() -> None:
    rows = [
        {"sku": sku, "name": "Clover Honey", "category": "Raw Honey", "price": "8"}
        for sku in ("BH-CLV-1", "BH-CLV-1a", "bh-clv-1", "Bh-Clv-1")
    ]

    product_import(rows=rows)

    slugs = set(Product.objects.values_list("slug", flat=True))
    assert slugs == {
        "clover-honey",
        "clover-honey-bh-clv-1a",
        "clover-honey-bh-clv-1",
        "clover-honey-bh-clv-1-2",
    }


@pytest.mark.django_db
def test_import_queues_embedding_and_analyses_the_table_only_when_rows_changed(
    django_capture_on_commit_callbacks,
) -> None:
    product_import(rows=catalog_rows())
    rows = catalog_rows()
    rows[0]["price"] = "9.75"

    with django_capture_on_commit_callbacks(execute=False) as changed:
        product_import(rows=rows)
    with django_capture_on_commit_callbacks(execute=False) as unchanged:
        product_import(rows=rows)

    assert [callback.__name__ for callback in changed] == ["queue", "catalog_statistics_refresh"]
    assert unchanged == []


def rows_of_two_categories(count: int) -> list[dict[str, str]]:
    """``count`` products, half under a category named in another case and half under one named
    by its slug."""
    return [
        {
            "sku": f"BH-{number:03d}",
            "name": f"Meadow Honey {number}",
            "category": "raw HONEY" if number % 2 else "beeswax-goods",
            "price": "9.50",
        }
        for number in range(count)
    ]


@pytest.fixture
def two_categories() -> None:
    """The categories ``rows_of_two_categories`` names."""
    CategoryFactory.create(name="Raw Honey", slug="raw-honey")
    CategoryFactory.create(name="Beeswax Goods & Wraps", slug="beeswax-goods")


@pytest.mark.django_db
@pytest.mark.parametrize("count", [5, 50])
def test_importing_a_file_again_costs_the_same_statements_however_many_rows(
    count: int, django_assert_max_num_queries, two_categories: None
) -> None:
    product_import(rows=rows_of_two_categories(count))

    # A savepoint and its release, the foreign keys checked at once (SET CONSTRAINTS), the
    # products, the categories' names lowered and read, and the categories read once more while
    # the rows are checked (a new name's slug must be free), and the currencies of the skus'
    # products (a stored product keeps one withdrawn since).
    with django_assert_max_num_queries(9):
        report = product_import(rows=rows_of_two_categories(count))

    assert report.summary() == f"created 0, updated 0, unchanged {count}, invalid 0"


@pytest.mark.django_db
@pytest.mark.parametrize("count", [5, 50])
def test_an_import_of_new_rows_costs_the_same_statements_however_many_rows(
    count: int, django_assert_max_num_queries, two_categories: None
) -> None:
    ProductFactory.create(name="Meadow Honey 1", slug="meadow-honey-1")

    # As an import of the same file again, and the slugs the new rows would take asked for at
    # once, and the rows inserted in one statement.
    with django_assert_max_num_queries(11):
        report = product_import(rows=rows_of_two_categories(count))

    assert report.summary() == f"created {count}, updated 0, unchanged 0, invalid 0"
    slugs = dict(Product.objects.values_list("sku", "slug"))
    assert slugs["BH-001"] == "meadow-honey-1-bh-001"
    assert slugs["BH-004"] == "meadow-honey-4"


@pytest.mark.django_db
@pytest.mark.parametrize("count", [5, 50])
def test_an_import_that_changes_every_row_writes_each_once_and_reads_no_more(
    count: int, django_assert_max_num_queries, two_categories: None
) -> None:
    product_import(rows=rows_of_two_categories(count))
    rows = [{**row, "price": "9.75"} for row in rows_of_two_categories(count)]

    with django_assert_max_num_queries(9 + count):
        report = product_import(rows=rows)

    assert report.summary() == f"created 0, updated {count}, unchanged 0, invalid 0"
    assert set(Product.objects.values_list("price", flat=True)) == {Decimal("9.75")}


@pytest.mark.django_db
def test_an_import_that_changes_a_row_keeps_its_embedding() -> None:
    product_import(rows=catalog_rows())
    embeddings_refresh(kind="products")
    embedded = Product.objects.get(sku="BH-RAW-001").embedding
    rows = catalog_rows()
    rows[0]["stock"] = "12"

    product_import(rows=rows)

    product = Product.objects.get(sku="BH-RAW-001")
    assert product.stock == 12
    assert np.array_equal(product.embedding, embedded)


@pytest.mark.django_db
def test_a_category_an_import_makes_is_the_one_later_rows_name_in_any_case_or_by_slug() -> None:
    rows = [
        {**catalog_rows()[0], "sku": "BH-1", "category": "Gift Sets"},
        {**catalog_rows()[0], "sku": "BH-2", "category": "GIFT SETS"},
        {**catalog_rows()[0], "sku": "BH-3", "category": "gift-sets"},
    ]

    report = product_import(rows=rows)

    gifts = Category.objects.get()
    assert (gifts.name, gifts.slug, report.created_categories) == (
        "Gift Sets",
        "gift-sets",
        ["Gift Sets"],
    )
    assert set(Product.objects.values_list("category", flat=True)) == {gifts.pk}


@pytest.mark.django_db
def test_a_slug_two_categories_share_but_for_case_names_the_first_by_name() -> None:
    # "Gift-Sets" and the slug the import makes, "gift-sets": once that category is made, the
    # name "gift-sets" finds it first by name.
    zeta = CategoryFactory.create(name="Zeta", slug="Gift-Sets")
    rows = [
        {**catalog_rows()[0], "sku": "BH-1", "category": "gift-sets"},
        {**catalog_rows()[0], "sku": "BH-2", "category": "Gift Sets"},
        {**catalog_rows()[0], "sku": "BH-3", "category": "gift-sets"},
    ]

    product_import(rows=rows)

    gifts = Category.objects.get(name="Gift Sets")
    assert dict(Product.objects.values_list("sku", "category")) == {
        "BH-1": zeta.pk,
        "BH-2": gifts.pk,
        "BH-3": gifts.pk,
    }


@pytest.mark.django_db
def test_an_import_skips_a_row_holding_a_lone_surrogate_rather_than_failing() -> None:
    rows = catalog_rows()
    rows[0]["name"] = "Wildflower \ud800Honey"  # what JSON's "\ud800" reads as

    report = product_import(rows=rows, skip_invalid=True)

    assert report.summary() == (
        "created 2, updated 0, unchanged 0, invalid 1; created categories: Raw Honey, Beeswax Goods"
    )
    assert report.errors == [
        "item 1: name: contains a lone surrogate (JSON's \\ud800 to \\udfff), which is no character"
    ]


NEW_CATEGORIES_REFUSAL = (
    "the file names categories that do not exist ({}), which the import would create, and you"
    " may not add categories: name existing ones, or ask someone who may add categories to"
    " create them (or to import the file)"
)


@pytest.mark.django_db
def test_an_import_that_may_not_create_categories_refuses_a_file_naming_new_ones() -> None:
    CategoryFactory.create(name="Raw Honey")
    rows = [*catalog_rows(), {**catalog_rows()[2], "sku": "BH-GIFT-1", "category": "Gift Sets"}]

    with pytest.raises(CatalogImportError) as excinfo:
        product_import(rows=rows, may_create_categories=False)

    assert str(excinfo.value) == NEW_CATEGORIES_REFUSAL.format("Beeswax Goods, Gift Sets")
    assert excinfo.value.report.errors == [
        f"item {n}: category: {name!r} would be a new category, and this import may not create"
        " categories"
        for n, name in [(3, "Beeswax Goods"), (4, "Gift Sets")]
    ]
    assert not Product.objects.exists()
    assert list(Category.objects.values_list("name", flat=True)) == ["Raw Honey"]


@pytest.mark.django_db
def test_an_import_that_may_not_create_categories_skips_the_rows_naming_new_ones() -> None:
    # --skip-invalid: such a row is an invalid row like any other, the rest load.
    CategoryFactory.create(name="Raw Honey", slug="raw-honey")

    report = product_import(rows=catalog_rows(), skip_invalid=True, may_create_categories=False)

    assert report.summary() == "created 2, updated 0, unchanged 0, invalid 1"
    assert report.errors == [
        "item 3: category: 'Beeswax Goods' would be a new category, and this import may not"
        " create categories"
    ]
    assert set(Product.objects.values_list("sku", flat=True)) == {"BH-RAW-001", "BH-RAW-003"}
    assert Category.objects.count() == 1


@pytest.mark.django_db
def test_an_import_that_may_not_create_categories_loads_a_file_naming_existing_ones(
    two_categories: None,
) -> None:
    rows = [
        {**row, "category": row["category"].replace("Beeswax Goods", "beeswax-goods")}
        for row in catalog_rows()
    ]

    report = product_import(rows=rows, may_create_categories=False)

    assert report.summary() == "created 3, updated 0, unchanged 0, invalid 0"
    assert Category.objects.count() == 2


@pytest.mark.django_db
def test_a_category_deleted_after_the_file_was_checked_is_not_created_again() -> None:
    honey = CategoryFactory.create(name="Raw Honey", slug="raw-honey")
    rows = catalog_rows()[:2]
    deleted: list[str] = []

    def delete_on_the_first_savepoint(execute: Any, sql: str, *args: Any) -> Any:
        # The import's transaction starts after the file was checked; a colleague deletes the
        # category in between.
        if sql.startswith("SAVEPOINT") and not deleted:
            deleted.append(sql)
            Category.objects.filter(pk=honey.pk).delete()
        return execute(sql, *args)

    with (
        connection.execute_wrapper(delete_on_the_first_savepoint),
        pytest.raises(CatalogImportError) as excinfo,
    ):
        product_import(rows=rows, may_create_categories=False)

    assert str(excinfo.value) == NEW_CATEGORIES_REFUSAL.format("Raw Honey")
    assert not Product.objects.exists()
    assert not Category.objects.exists()


def rows_of_unslugged_categories(count: int) -> list[dict[str, str]]:
    names = ["蜂蜜", "Μέλι", "ハチミツ"]
    return [
        {**catalog_rows()[0], "sku": f"BH-{n:03d}", "category": names[n % len(names)]}
        for n in range(count)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("count", [6, 60])
def test_categories_of_names_without_latin_letters_are_read_once_per_import(
    count: int, django_assert_max_num_queries
) -> None:
    CategoryFactory.create(name="蜂蜜", slug="fengmi")
    CategoryFactory.create(name="Μέλι", slug="meli")
    CategoryFactory.create(name="ハチミツ", slug="hachimitsu")
    product_import(rows=rows_of_unslugged_categories(count))

    # As test_importing_a_file_again_costs_the_same_statements_however_many_rows, and the
    # categories' names lowered and read once more, when the file is checked.
    with django_assert_max_num_queries(9):
        report = product_import(rows=rows_of_unslugged_categories(count))

    assert report.summary() == f"created 0, updated 0, unchanged {count}, invalid 0"


# --- product_create / product_update ----------------------------------------------------------


@pytest.mark.django_db
def test_product_create_validates_and_saves_with_a_slug(django_capture_on_commit_callbacks) -> None:
    category = CategoryFactory.create()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        product = product_create(
            sku="BH-NEW-1", name="Linden Honey", category=category, price=Decimal("10")
        )

    assert Product.objects.get(sku="BH-NEW-1").slug == "linden-honey"
    assert product.embedding_model == ""
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_product_create_refuses_an_invalid_product() -> None:
    category = CategoryFactory.create()

    with pytest.raises(ValidationError) as excinfo:
        product_create(sku="BH-NEW-1", name="Linden Honey", category=category, price=Decimal(-1))

    assert excinfo.value.message_dict == {
        "price": ["Ensure this value is greater than or equal to 0."]
    }
    assert not Product.objects.filter(sku="BH-NEW-1").exists()


@pytest.mark.django_db(transaction=True)
def test_a_sku_another_request_saves_meanwhile_is_a_field_error_not_an_integrity_error() -> None:
    category = CategoryFactory.create()

    with (
        saved_meanwhile(lambda: ProductFactory.create(sku="BH-RACE-1", category=category)),
        pytest.raises(ValidationError) as excinfo,
    ):
        product_create(sku="BH-RACE-1", name="Linden Honey", category=category, price=Decimal(9))

    assert set(excinfo.value.message_dict) == {"sku"}
    assert Product.objects.filter(sku="BH-RACE-1").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_category_another_request_deletes_meanwhile_is_a_field_error_not_an_integrity_error():
    category = CategoryFactory.create()

    with (
        saved_meanwhile(lambda: Category.objects.filter(pk=category.pk).delete()),
        pytest.raises(ValidationError) as excinfo,
    ):
        product_create(sku="BH-RACE-2", name="Linden Honey", category=category, price=Decimal(9))

    assert set(excinfo.value.message_dict) == {"category"}
    assert not Product.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_category_name_another_request_saves_meanwhile_in_any_case_is_refused() -> None:
    with (
        saved_meanwhile(lambda: CategoryFactory.create(name="Mead", slug="mead")),
        pytest.raises(ValidationError) as excinfo,
    ):
        services.category_create(name="MEAD", slug="mead-2")

    assert excinfo.value.messages == ["A category with this name already exists."]
    assert Category.objects.filter(name__iexact="mead").count() == 1


@pytest.mark.django_db
def test_an_import_reports_its_rows_compared_updated_and_inserted_as_it_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services, "IMPORT_INSERT_BATCH_ROWS", 2)
    rows = catalog_rows()
    product_import(rows=rows[:2])
    more = [{**row, "sku": f"{row['sku']}-B"} for row in rows[:2]]
    calls: list[tuple[int, int]] = []

    report = product_import(
        rows=[rows[0], {**rows[1], "stock": "1"}, rows[2], *more],
        on_progress=lambda *call: calls.append(call),
    )

    assert (report.unchanged, report.updated, report.created) == (1, 1, 3)
    assert calls == [(1, 5), (4, 5), (5, 5), (5, 5)]


@pytest.mark.django_db(transaction=True)
def test_an_import_meeting_a_category_another_request_saves_meanwhile_fails_in_one_line() -> None:
    rows = [{**catalog_rows()[0], "category": "MEAD"}]

    with (
        saved_meanwhile(lambda: CategoryFactory.create(name="Mead", slug="honey-wine")),
        pytest.raises(CatalogImportError) as excinfo,
    ):
        product_import(rows=rows)

    assert str(excinfo.value) == (
        "a change saved meanwhile conflicts with this import"
        ' (duplicate key value violates unique constraint "category_name_unique_any_case");'
        " nothing was imported: try again"
    )
    assert not Product.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_import_changing_a_product_another_request_deletes_meanwhile_fails_in_one_line() -> None:
    product_import(rows=catalog_rows())
    rows = [{**row, "stock": "3"} for row in catalog_rows()]

    with (
        saved_meanwhile(lambda: Product.objects.filter(sku="BH-RAW-001").delete()),
        pytest.raises(CatalogImportError) as excinfo,
    ):
        product_import(rows=rows)

    assert str(excinfo.value) == (
        "a change saved meanwhile conflicts with this import (sku 'BH-RAW-001' was deleted"
        " meanwhile); nothing was imported: try again"
    )
    assert set(Product.objects.values_list("stock", flat=True)) != {3}


@pytest.mark.django_db
def test_a_product_stored_before_the_sku_check_and_deleted_meanwhile_is_not_made_anew() -> None:
    product_import(rows=catalog_rows()[:1])
    # As stored before migration 0007 (the sku's format): a new product may not have it.
    Product.objects.update(sku="BH RAW 001")
    rows = [{**catalog_rows()[0], "sku": "BH RAW 001", "stock": "3"}]
    deleted: list[str] = []

    def delete_on_the_first_savepoint(execute: Any, sql: str, *args: Any) -> Any:
        # The import's transaction starts after the file was checked against the stored skus;
        # a colleague deletes the product in between.
        if sql.startswith("SAVEPOINT") and not deleted:
            deleted.append(sql)
            Product.objects.all().delete()
        return execute(sql, *args)

    with (
        connection.execute_wrapper(delete_on_the_first_savepoint),
        pytest.raises(CatalogImportError) as excinfo,
    ):
        product_import(rows=rows)

    assert str(excinfo.value) == (
        "a change saved meanwhile conflicts with this import (sku 'BH RAW 001' was deleted"
        " meanwhile); nothing was imported: try again"
    )
    assert not Product.objects.exists()


def _repriced(row: dict[str, str]) -> dict[str, str]:
    """``row`` at another price, without its stock: an import then leaves the stock alone."""
    return {name: value for name, value in row.items() if name != "stock"} | {"price": "12.00"}


def _stock_set(sku: str, stock: int) -> Callable[[], object]:
    return lambda: Product.objects.filter(sku=sku).update(stock=stock)


@pytest.mark.django_db(transaction=True)
def test_an_import_writes_its_rows_in_sku_order_so_a_writer_in_that_order_only_waits() -> None:
    product_import(rows=catalog_rows())
    repriced = [_repriced(row) for row in reversed(catalog_rows())]

    # The other writer takes the first sku, then, a second later, the last: an import writing
    # in the file's order (the last sku first) then waited for the first, and it for the last.
    with saved_meanwhile(_stock_set("BH-RAW-001", 1), _stock_set("BH-WAX-001", 2)):
        report = product_import(rows=repriced)

    assert report.updated == 3
    assert set(Product.objects.values_list("price", flat=True)) == {Decimal("12.00")}
    assert Product.objects.get(sku="BH-WAX-001").stock == 2


@pytest.mark.django_db(transaction=True)
def test_an_import_deadlocked_by_a_writer_in_another_order_fails_in_one_line() -> None:
    product_import(rows=catalog_rows())
    repriced = [_repriced(row) for row in catalog_rows()]

    with (
        saved_meanwhile(_stock_set("BH-WAX-001", 2), _stock_set("BH-RAW-001", 1)),
        pytest.raises(CatalogImportError) as excinfo,
    ):
        product_import(rows=repriced)

    assert str(excinfo.value) == (
        "another change to these rows at the same moment deadlocked with this import; nothing"
        " was imported: try again"
    )
    assert Decimal("12.00") not in set(Product.objects.values_list("price", flat=True))
    assert Product.objects.get(sku="BH-RAW-001").stock == 1  # the other writer's, committed


@pytest.mark.django_db(transaction=True)
def test_an_import_writes_only_its_columns_over_what_was_saved_while_it_ran() -> None:
    product_import(rows=catalog_rows()[:1])
    prices_only = [{**catalog_rows()[0], "price": "9.95"}]
    del prices_only[0]["stock"], prices_only[0]["tags"]

    with saved_meanwhile(
        lambda: Product.objects.filter(sku="BH-RAW-001").update(stock=3, is_active=False)
    ):
        report = product_import(rows=prices_only)

    assert report.updated == 1
    assert Product.objects.values_list("price", "stock", "is_active", "tags").get() == (
        Decimal("9.95"),
        3,
        False,
        ["raw", "british"],
    )


@pytest.mark.django_db
def test_a_tag_holding_a_tag_separator_is_refused() -> None:
    product = ProductFactory.create(tags=["gift"])

    with pytest.raises(ValidationError) as excinfo:
        product_update(product=product, tags=["gift;boxed"])

    assert set(excinfo.value.message_dict) == {"tags"}
    assert Product.objects.get(pk=product.pk).tags == ["gift"]


@pytest.mark.django_db
def test_product_update_changes_the_given_fields() -> None:
    product = ProductFactory.create(price=Decimal("9.50"), stock=3)

    product_update(product=product, price=Decimal("11.00"), stock=0)

    product.refresh_from_db()
    assert (product.price, product.stock, product.in_stock) == (Decimal("11.00"), 0, False)


@pytest.mark.django_db
def test_product_update_of_some_fields_keeps_what_others_saved_since_it_was_read(
    django_capture_on_commit_callbacks,
) -> None:
    product = ProductFactory.create(price=Decimal("9.50"), stock=10, description="Runny.")
    # An order placed through the API after the product was read.
    Product.objects.filter(pk=product.pk).update(stock=3)
    product.description = "Runny and floral."

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        product_update(product=product, update_fields=["description"], price=Decimal("8.75"))

    assert Product.objects.values_list("description", "price", "stock").get() == (
        "Runny and floral.",
        Decimal("8.75"),
        3,
    )
    assert Product.objects.get().updated_at > product.created_at
    assert len(callbacks) == 1  # its embedding


@pytest.mark.django_db
def test_product_update_writes_the_given_fields_alone() -> None:
    product = ProductFactory.create(price=Decimal("9.50"), stock=10, is_active=True)
    # An import and a staff member's deactivation after the product was read (an API PATCH of
    # its price reads it first).
    Product.objects.filter(pk=product.pk).update(stock=3, is_active=False)

    product_update(product=product, price=Decimal("8.75"))

    assert Product.objects.values_list("price", "stock", "is_active").get() == (
        Decimal("8.75"),
        3,
        False,
    )


@pytest.mark.django_db
def test_knowledge_article_update_writes_the_given_fields_alone() -> None:
    article = KnowledgeArticleFactory.create(title="Storage", is_published=True)
    KnowledgeArticle.objects.filter(pk=article.pk).update(is_published=False)

    knowledge_article_update(article=article, title="Storing honey")

    assert KnowledgeArticle.objects.values_list("title", "is_published").get() == (
        "Storing honey",
        False,
    )


@pytest.mark.django_db
def test_category_update_writes_the_given_fields_alone() -> None:
    category = CategoryFactory.create(name="Raw honey", description="Unheated.")
    Category.objects.filter(pk=category.pk).update(description="Unheated and unfiltered.")

    services.category_update(category=category, name="Raw honeys")

    assert Category.objects.values_list("name", "description").get() == (
        "Raw honeys",
        "Unheated and unfiltered.",
    )


@pytest.mark.django_db
def test_product_update_of_some_fields_validates_those() -> None:
    product = ProductFactory.create(sku="HB 001", slug="hb-001", stock=10)
    product.stock = -1

    with pytest.raises(ValidationError) as excinfo:
        product_update(product=product, update_fields=["stock"])

    # Not the sku it does not write, which predates the sku rule.
    assert set(excinfo.value.message_dict) == {"stock"}
    assert Product.objects.get().stock == 10


@pytest.mark.django_db
def test_knowledge_article_update_of_some_fields_keeps_what_others_saved() -> None:
    article = KnowledgeArticleFactory.create(body="Old body.", is_published=True)
    KnowledgeArticle.objects.filter(pk=article.pk).update(is_published=False)
    article.body = "New body."

    knowledge_article_update(article=article, update_fields=["body"])

    assert KnowledgeArticle.objects.values_list("body", "is_published").get() == (
        "New body.",
        False,
    )


# --- categories and knowledge -----------------------------------------------------------------


@pytest.mark.django_db
def test_a_product_whose_sku_predates_the_sku_rule_can_still_be_updated() -> None:
    product = ProductFactory.create(sku="HB 001", slug="hb-001")

    product_update(product=product, price=Decimal("7.50"))

    assert Product.objects.get(sku="HB 001").price == Decimal("7.50")
    with pytest.raises(ValidationError) as excinfo:
        product_update(product=product, sku="HB 002")
    assert set(excinfo.value.message_dict) == {"sku"}


@pytest.mark.django_db
def test_a_category_slug_that_is_taken_is_numbered() -> None:
    CategoryFactory.create(name="Gifts & Sets", slug="gifts-sets")

    slug = _unique_slug(Category, "Gifts Sets")

    assert slug == "gifts-sets-2"


@pytest.mark.django_db
def test_a_numbered_category_slug_stays_within_the_field() -> None:
    CategoryFactory.create(name="Heather honeys", slug="h" * 50 + "-" + "h" * 49)

    slug = _unique_slug(Category, "h" * 50 + " " + "h" * 49)

    assert slug == "h" * 50 + "-" + "h" * 47 + "-2"


def article_rows() -> list[dict[str, Any]]:
    return [
        {
            "slug": "storing-honey",
            "title": "How to store honey",
            "topic": "storage",
            "body": "Keep it in a cupboard.",
        },
        {"title": "Returns within 30 days", "topic": "returns", "body": "Send it back unopened."},
    ]


@pytest.mark.django_db
def test_knowledge_import_creates_articles_with_given_or_title_made_slugs() -> None:
    report = knowledge_import(rows=article_rows())

    assert report.summary() == "created 2, updated 0, unchanged 0, invalid 0"
    assert dict(KnowledgeArticle.objects.values_list("slug", "topic")) == {
        "storing-honey": "storage",
        "returns-within-30-days": "returns",
    }
    assert KnowledgeArticle.objects.filter(is_published=True).count() == 2


@pytest.mark.django_db
def test_knowledge_import_of_the_same_file_again_changes_nothing(
    django_capture_on_commit_callbacks,
) -> None:
    knowledge_import(rows=article_rows())

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = knowledge_import(rows=article_rows())

    assert report.summary() == "created 0, updated 0, unchanged 2, invalid 0"
    assert callbacks == []
    assert KnowledgeArticle.objects.count() == 2


@pytest.mark.django_db
def test_knowledge_import_updates_only_the_columns_a_row_gives(
    django_capture_on_commit_callbacks,
) -> None:
    article = KnowledgeArticleFactory.create(
        slug="storing-honey", body="Old advice.", is_published=False
    )
    row = {"slug": "storing-honey", "title": article.title, "topic": "storage", "body": "New."}

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = knowledge_import(rows=[row])

    article.refresh_from_db()
    assert report.summary() == "created 0, updated 1, unchanged 0, invalid 0"
    assert (article.body, article.topic, article.is_published) == ("New.", "storage", False)
    assert [callback.__name__ for callback in callbacks] == ["queue", "catalog_statistics_refresh"]


@pytest.mark.django_db
def test_knowledge_import_keeps_a_withdrawn_article_withdrawn_if_is_published_is_blank() -> None:
    KnowledgeArticleFactory.create(slug="storing-honey", title="Storing honey", is_published=False)
    row = {
        "slug": "storing-honey", "title": "Storing honey", "topic": "storage", "body": "New.",
        "is_published": "",
    }  # fmt: skip

    knowledge_import(rows=[row])

    article = KnowledgeArticle.objects.get(slug="storing-honey")
    assert (article.body, article.is_published) == ("New.", False)


@pytest.mark.django_db
def test_knowledge_import_writes_nothing_when_any_row_is_invalid() -> None:
    rows = article_rows()
    rows[1]["topic"] = "recipes"

    with pytest.raises(CatalogImportError) as excinfo:
        knowledge_import(rows=rows)

    assert excinfo.value.report.errors == [
        "item 2: topic: 'recipes' is not one of shipping, returns, storage, health, beekeeping,"
        " orders, products"
    ]
    assert not KnowledgeArticle.objects.exists()


@pytest.mark.django_db
def test_knowledge_import_with_skip_invalid_loads_the_good_rows() -> None:
    rows = article_rows()
    rows[0]["is_published"] = "maybe"

    report = knowledge_import(rows=rows, skip_invalid=True)

    assert report.summary() == "created 1, updated 0, unchanged 0, invalid 1"
    assert list(KnowledgeArticle.objects.values_list("slug", flat=True)) == [
        "returns-within-30-days"
    ]


@pytest.mark.django_db
def test_knowledge_import_skips_a_row_holding_a_lone_surrogate_rather_than_failing() -> None:
    rows = article_rows()
    rows[0]["body"] = "Keep it in a \udfff cupboard."

    report = knowledge_import(rows=rows, skip_invalid=True)

    assert report.summary() == "created 1, updated 0, unchanged 0, invalid 1"
    assert report.errors == [
        "item 1: body: contains a lone surrogate (JSON's \\ud800 to \\udfff), which is no character"
    ]


@pytest.mark.django_db
def test_knowledge_import_finds_an_article_by_the_slug_the_api_made_from_a_long_title() -> None:
    # slugify writes each "\ufb03" as "ffi": the slug of this title is longer than its field.
    title = ("Honey \ufb03 " * 25).strip()
    made = services.knowledge_article_create(title=title, topic="storage", body="Old.")
    row = {"title": title, "topic": "storage", "body": "New."}

    report = knowledge_import(rows=[row])

    article = KnowledgeArticle.objects.get()
    assert report.summary() == "created 0, updated 1, unchanged 0, invalid 0"
    assert (article.pk, article.slug, article.body) == (made.pk, made.slug, "New.")
    assert len(article.slug) <= 220


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["蜂蜜", "???"])
def test_a_category_whose_name_makes_no_slug_needs_one(name: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        services.category_create(name=name)

    assert excinfo.value.message_dict == {
        "slug": ["The name has no ASCII letters or digits to make one of; give a slug."]
    }
    assert services.category_create(name=name, slug="given").slug == "given"


@pytest.mark.django_db
def test_an_article_whose_title_makes_no_slug_needs_one() -> None:
    fields = {"topic": "orders", "body": "Soon."}

    with pytest.raises(ValidationError) as excinfo:
        services.knowledge_article_create(title="???", **fields)

    assert excinfo.value.message_dict == {
        "slug": ["The title has no ASCII letters or digits to make one of; give a slug."]
    }
    assert not KnowledgeArticle.objects.exists()


# --- embeddings_refresh -----------------------------------------------------------------------


@pytest.mark.django_db
def test_refresh_embeds_stale_rows_and_records_model_and_text_hash() -> None:
    products = ProductFactory.create_batch(3)

    report = embeddings_refresh(kind="products")

    stored = list(Product.objects.filter(pk__in=[p.pk for p in products]))
    assert (report.embedded, report.current) == (3, 0)
    assert {p.embedding_model for p in stored} == {current_model_name()}
    assert [p.embedding_text_hash for p in stored] == [
        text_hash(p.embedding_text()) for p in stored
    ]
    assert {len(p.embedding) for p in stored} == {EMBEDDING_DIMENSIONS}
    assert None not in {p.embedded_at for p in stored}


@pytest.mark.django_db
def test_stored_vectors_keep_every_float4_exactly() -> None:
    product = ProductFactory.create()
    vector = np.random.default_rng(5).normal(size=EMBEDDING_DIMENSIONS).astype(np.float32)
    product.embedding = vector.tolist()
    product.embedding_model, product.embedding_text_hash = "m", "h"
    product.embedded_at = timezone.now()

    services._store_embeddings(Product, services._Embedded([product], {}), batch_size=1)

    product.refresh_from_db()
    assert np.array_equal(np.array(product.embedding, dtype=np.float32), vector)


@pytest.mark.django_db
def test_refresh_embeds_knowledge_articles() -> None:
    article = KnowledgeArticleFactory.create()

    report = embeddings_refresh(kind="knowledge")

    article.refresh_from_db()
    assert report.embedded == 1
    assert article.embedding_model == current_model_name()
    assert article.embedding_text_hash == text_hash(article.embedding_text())


def stored_passages(article: KnowledgeArticle) -> list[tuple[int, str]]:
    return list(article.passages.values_list("position", "text"))


@pytest.mark.django_db
def test_refresh_embeds_each_articles_title_and_paragraphs_as_its_passages() -> None:
    article = KnowledgeArticleFactory.create(
        title="Storing honey", body="Keep it dry.\r\n\r\nNot in the fridge.\n \nClose the lid."
    )

    embeddings_refresh(kind="knowledge")

    assert stored_passages(article) == [
        (0, "Storing honey"),
        (1, "Keep it dry."),
        (2, "Not in the fridge."),
        (3, "Close the lid."),
    ]
    backend = get_embedding_backend()
    for passage in article.passages.all():
        assert np.allclose(
            np.asarray(passage.embedding, dtype=float),
            backend.embed_documents([passage.text])[0],
            atol=2e-3,
        )


@pytest.mark.django_db
def test_an_article_embedded_again_has_its_passages_replaced() -> None:
    article = KnowledgeArticleFactory.create(title="Storing honey", body="A.\n\nB.\n\nC.")
    embeddings_refresh(kind="knowledge")

    knowledge_article_update(article=article, body="Only one paragraph now.")
    embeddings_refresh(kind="knowledge")

    assert stored_passages(article) == [(0, "Storing honey"), (1, "Only one paragraph now.")]


@pytest.mark.django_db
def test_a_backfill_the_embedding_api_fails_halfway_keeps_the_requests_answered(
    openai_embeddings: FakeOpenAIServer,
) -> None:
    # Texts cut to 8,191 bytes, 36 to a request: the first 36 rows are one, the last 4 another.
    long_products = ProductFactory.create_batch(40, description="Sweet. " * 1300)
    last = long_products[-1]
    last.description = "Forbidden. " + "Sweet. " * 1350  # the longest: read last
    last.save()
    openai_embeddings.refuse_embedding_inputs_with("Forbidden")

    with pytest.raises(openai.BadRequestError):
        embeddings_refresh(kind="products")

    assert [len(inputs) for inputs in openai_embeddings.embedding_inputs()] == [36, 4]
    embedded = Product.objects.filter(embedding_model=current_model_name())
    assert embedded.count() == 36
    assert not embedded.filter(pk=last.pk).exists()


@pytest.mark.django_db
def test_a_backfill_given_vectors_of_another_size_fails_naming_the_sizes(
    openai_embeddings: FakeOpenAIServer,
) -> None:
    ProductFactory.create()
    openai_embeddings.embedding_dimensions = 1536

    with pytest.raises(EmbeddingSizeError, match="1536 dimensions, not 384"):
        embeddings_refresh(kind="products")

    assert not Product.objects.filter(embedding_model=current_model_name()).exists()


@pytest.mark.django_db
def test_an_edited_article_embeds_only_its_own_text_and_the_paragraphs_that_changed(
    openai_embeddings: FakeOpenAIServer,
) -> None:
    article = KnowledgeArticleFactory.create(title="Storing honey", body="A.\n\nB.\n\nC.")
    embeddings_refresh(kind="knowledge")
    vectors_before = dict(article.passages.values_list("text", "embedding"))
    openai_embeddings.reset()

    article = KnowledgeArticle.objects.get(pk=article.pk)  # as the admin or the API reads it
    knowledge_article_update(article=article, body="A.\n\nB, now longer.\n\nC.")
    embeddings_refresh(kind="knowledge")

    assert openai_embeddings.embedding_inputs() == [[article.embedding_text(), "B, now longer."]]
    assert stored_passages(article) == [
        (0, "Storing honey"),
        (1, "A."),
        (2, "B, now longer."),
        (3, "C."),
    ]
    vectors_after = dict(article.passages.values_list("text", "embedding"))
    for text in ("Storing honey", "A.", "C."):
        assert vectors_after[text] == vectors_before[text]


@pytest.mark.django_db
def test_a_forced_refresh_embeds_every_passage_again(openai_embeddings: FakeOpenAIServer) -> None:
    article = KnowledgeArticleFactory.create(title="Storing honey", body="A.\n\nB.")
    embeddings_refresh(kind="knowledge")
    openai_embeddings.reset()

    embeddings_refresh(kind="knowledge", force=True)

    assert openai_embeddings.embedding_inputs() == [
        [article.embedding_text(), "Storing honey", "A.", "B."]
    ]


@pytest.mark.django_db
def test_an_article_saved_while_it_is_being_embedded_gets_no_passages_of_its_old_text() -> None:
    article = KnowledgeArticleFactory.create(body="Mild and floral.")

    def save_meanwhile(checked: int, total: int) -> None:
        knowledge_article_update(
            article=KnowledgeArticle.objects.get(pk=article.pk), body="Now smoky."
        )

    report = embeddings_refresh(
        kind="knowledge", ids=[article.pk], batch_size=1, on_progress=save_meanwhile
    )

    assert report.embedded == 0
    assert not KnowledgePassage.objects.exists()
    embeddings_refresh(kind="knowledge", ids=[article.pk])
    assert [text for _, text in stored_passages(article)][1:] == ["Now smoky."]


@pytest.mark.django_db
def test_a_second_refresh_embeds_nothing() -> None:
    ProductFactory.create_batch(3)
    embeddings_refresh(kind="products")

    report = embeddings_refresh(kind="products")

    assert (report.embedded, report.current) == (0, 3)


@pytest.mark.django_db
def test_changing_a_description_makes_exactly_that_row_stale() -> None:
    changed, untouched = ProductFactory.create_batch(2)
    embeddings_refresh(kind="products")
    embedded_at = Product.objects.get(pk=untouched.pk).embedded_at
    changed.description = "Now infused with Madagascan vanilla pods."
    changed.save()

    report = embeddings_refresh(kind="products")

    changed.refresh_from_db()
    assert (report.embedded, report.current) == (1, 1)
    assert changed.embedding_text_hash == text_hash(changed.embedding_text())
    assert Product.objects.get(pk=untouched.pk).embedded_at == embedded_at


@pytest.mark.django_db
def test_a_row_saved_while_it_is_being_embedded_keeps_what_it_has() -> None:
    product = ProductFactory.create(description="Mild and floral.")

    def save_meanwhile(checked: int, total: int) -> None:
        product_update(product=Product.objects.get(pk=product.pk), description="Now smoky.")

    report = embeddings_refresh(
        kind="products", ids=[product.pk], batch_size=1, on_progress=save_meanwhile
    )

    product.refresh_from_db()
    assert report.embedded == 0  # its vector, of the old text, was not written over the save
    assert report.saved_meanwhile == 1
    assert product.embedding_model == ""  # the save's own task embeds it
    assert embeddings_refresh(kind="products", ids=[product.pk]).embedded == 1


@pytest.mark.django_db
def test_a_renamed_category_marks_its_products_changed_and_queues_them(
    django_capture_on_commit_callbacks,
) -> None:
    product = ProductFactory.create()
    other = ProductFactory.create()
    updated_at = {p.pk: p.updated_at for p in (product, other)}

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        category_renamed(category=product.category)

    assert Product.objects.get(pk=product.pk).updated_at > updated_at[product.pk]
    assert Product.objects.get(pk=other.pk).updated_at == updated_at[other.pk]
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_renaming_a_category_makes_its_products_stale() -> None:
    product = ProductFactory.create()
    embeddings_refresh(kind="products")
    product.category.name = "Seasonal Specials"
    product.category.save()

    report = embeddings_refresh(kind="products")

    assert report.embedded == 1


@pytest.mark.django_db
def test_rows_embedded_by_another_model_are_stale() -> None:
    product = ProductFactory.create()
    embeddings_refresh(kind="products")
    Product.objects.filter(pk=product.pk).update(embedding_model="openai:text-embedding-3-small")

    report = embeddings_refresh(kind="products")

    product.refresh_from_db()
    assert report.embedded == 1
    assert product.embedding_model == current_model_name()


@pytest.mark.django_db
def test_refresh_can_be_limited_to_some_ids() -> None:
    chosen, other = ProductFactory.create_batch(2)

    report = embeddings_refresh(kind="products", ids=[chosen.pk])

    assert report.embedded == 1
    assert Product.objects.get(pk=other.pk).embedding_model == ""


@pytest.mark.django_db
def test_force_re_embeds_current_rows() -> None:
    ProductFactory.create_batch(3)
    embeddings_refresh(kind="products")

    report = embeddings_refresh(kind="products", force=True)

    assert (report.embedded, report.current) == (3, 0)


@pytest.mark.django_db
def test_dry_run_counts_stale_rows_and_writes_nothing() -> None:
    ProductFactory.create_batch(3)

    report = embeddings_refresh(kind="products", dry_run=True)

    assert report.embedded == 3
    assert set(Product.objects.values_list("embedding_model", flat=True)) == {""}
    assert Product.objects.filter(embedding__isnull=False).count() == 0


@pytest.mark.django_db
def test_stale_rows_are_written_in_transactions_of_batch_size() -> None:
    ProductFactory.create_batch(5)

    with CaptureQueriesContext(connection) as queries:
        embeddings_refresh(kind="products", batch_size=2)

    updates = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "catalog_product"')]
    assert len(updates) == 3  # 2 + 2 + 1 rows


@pytest.mark.django_db
def test_progress_is_reported_as_each_slice_is_written_and_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services, "ENCODE_SLICE_ROWS", 2)
    ProductFactory.create_batch(5)
    calls: list[tuple[int, int]] = []

    embeddings_refresh(kind="products", batch_size=2, on_progress=lambda *c: calls.append(c))

    assert calls == [(2, 5), (4, 5), (5, 5)]


@pytest.mark.django_db
def test_progress_counts_no_row_read_until_it_is_written() -> None:
    ProductFactory.create_batch(5)  # one slice for the model: written at the end
    calls: list[tuple[int, int]] = []

    embeddings_refresh(kind="products", batch_size=2, on_progress=lambda *c: calls.append(c))

    assert calls == [(0, 5), (0, 5), (5, 5)]


@pytest.mark.django_db
def test_a_refresh_reads_only_rows_whose_text_or_model_changed() -> None:
    products = ProductFactory.create_batch(5)
    embeddings_refresh(kind="products")
    Product.objects.filter(pk=products[1].pk).update(name="Renamed Heather Honey")
    calls: list[tuple[int, int]] = []

    report = embeddings_refresh(
        kind="products", batch_size=1, on_progress=lambda *c: calls.append(c)
    )

    assert (report.embedded, report.current) == (1, 4)
    assert calls == [(4, 5), (5, 5)]  # the 4 current rows were counted, never read


def _columns_selected(
    queries: CaptureQueriesContext, model: type[Product | KnowledgeArticle]
) -> str:
    """The columns of ``model``'s table that the captured statements loading its rows select
    (their select lists, not their conditions nor counts)."""
    reading = f'SELECT "{model._meta.db_table}"."id"'  # a cursor's begins "DECLARE ... FOR"
    statements = [query["sql"] for query in queries.captured_queries]
    return " ".join(
        sql[sql.index(reading) :].split(" FROM ")[0] for sql in statements if reading in sql
    )


@pytest.mark.django_db
@pytest.mark.parametrize("model", [Product, KnowledgeArticle], ids=["products", "knowledge"])
def test_a_refresh_loads_none_of_the_columns_only_searches_read(
    model: type[Product | KnowledgeArticle],
) -> None:
    # A product's two vectors parsed from text cost 1.3 s of a 10k-row backfill.
    factory = ProductFactory if model is Product else KnowledgeArticleFactory
    factory.create_batch(2, embedding_model="another-model")
    kind = "products" if model is Product else "knowledge"

    with CaptureQueriesContext(connection) as queries:
        report = embeddings_refresh(kind=kind)

    assert report.embedded == 2
    selected = _columns_selected(queries, model)
    assert f'"{model._meta.db_table}"."embedding_model"' in selected
    for column in model.search_only_fields():
        assert f'"{model._meta.db_table}"."{column}"' not in selected


@pytest.mark.django_db
def test_an_import_loads_none_of_the_columns_only_searches_read() -> None:
    product_import(rows=catalog_rows())
    rows = [{**row, "price": "9.75"} for row in catalog_rows()]

    with CaptureQueriesContext(connection) as queries:
        report = product_import(rows=rows)

    assert report.summary().startswith("created 0, updated ")
    selected = _columns_selected(queries, Product)
    assert '"catalog_product"."sku"' in selected
    for column in ["embedding", "embedding_half", "search_vector"]:
        assert f'"catalog_product"."{column}"' not in selected


@pytest.mark.django_db
def test_an_interrupted_refresh_keeps_finished_batches_and_a_rerun_does_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Encode two rows per model call, so the first progress report follows a written batch.
    monkeypatch.setattr(services, "ENCODE_SLICE_ROWS", 2)
    products = ProductFactory.create_batch(5)
    with pytest.raises(Interrupted):
        embeddings_refresh(kind="products", batch_size=2, on_progress=interrupt)
    embedded = Product.objects.filter(embedding_model=current_model_name())
    first_batch = {products[0].pk, products[1].pk}
    assert set(embedded.values_list("pk", flat=True)) == first_batch

    report = embeddings_refresh(kind="products", batch_size=2)

    assert (report.embedded, report.current) == (3, 2)
    assert embedded.count() == 5


def _hnsw_index_exists() -> bool:
    """Every HNSW graph of the products: the whole table's and the price ceilings'."""
    return hnsw_indexes_missing() == []


def _index_statements(queries: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"].split(" ON ")[0]
        for q in queries
        if q["sql"].startswith(("DROP INDEX", "CREATE INDEX"))
        and "product_embedding_hnsw" in q["sql"]
    ]


# The index is only ever rebuilt outside a caller's transaction: these tests commit.
rebuild_test = pytest.mark.django_db(transaction=True)


@rebuild_test
def test_re_embedding_most_of_a_large_table_builds_the_hnsw_index_once_at_the_end(
    settings: Any,
) -> None:
    settings.EMBEDDING_INDEX_REBUILD_MIN_ROWS = 3
    ProductFactory.create_batch(4)

    with CaptureQueriesContext(connection) as queries:
        report = embeddings_refresh(kind="products", batch_size=2)

    statements = [q["sql"] for q in queries]
    dropped = next(i for i, sql in enumerate(statements) if sql.startswith("DROP INDEX"))
    built = next(i for i, sql in enumerate(statements) if sql.startswith("CREATE INDEX"))
    updates = [i for i, sql in enumerate(statements) if sql.startswith('UPDATE "catalog_product"')]
    assert report.embedded == 4
    assert dropped < min(updates)
    assert max(updates) < built
    assert len(_index_statements(queries)) == 2 * len(PRODUCT_HNSW_INDEXES)
    assert _hnsw_index_exists()


@rebuild_test
def test_re_embedding_fewer_rows_than_the_threshold_keeps_the_index(settings: Any) -> None:
    settings.EMBEDDING_INDEX_REBUILD_MIN_ROWS = 5
    ProductFactory.create_batch(4)

    with CaptureQueriesContext(connection) as queries:
        report = embeddings_refresh(kind="products")

    assert report.embedded == 4
    assert _index_statements(queries) == []
    assert _hnsw_index_exists()


@rebuild_test
def test_re_embedding_less_than_half_the_table_keeps_the_index(settings: Any) -> None:
    settings.EMBEDDING_INDEX_REBUILD_MIN_ROWS = 1
    ProductFactory.create_batch(3)
    embeddings_refresh(kind="products")
    ProductFactory.create_batch(2)

    with CaptureQueriesContext(connection) as queries:
        report = embeddings_refresh(kind="products")

    assert (report.embedded, report.current) == (2, 3)
    assert _index_statements(queries) == []


@rebuild_test
def test_a_run_over_some_ids_never_drops_the_index(settings: Any) -> None:
    settings.EMBEDDING_INDEX_REBUILD_MIN_ROWS = 1
    products = ProductFactory.create_batch(4)

    with CaptureQueriesContext(connection) as queries:
        report = embeddings_refresh(kind="products", ids=[p.pk for p in products])

    assert report.embedded == 4
    assert _index_statements(queries) == []


@pytest.mark.django_db
def test_a_run_inside_a_callers_transaction_never_drops_the_index(settings: Any) -> None:
    settings.EMBEDDING_INDEX_REBUILD_MIN_ROWS = 1
    ProductFactory.create_batch(4)

    with CaptureQueriesContext(connection) as queries:
        report = embeddings_refresh(kind="products")

    assert report.embedded == 4
    assert _index_statements(queries) == []


@rebuild_test
def test_an_interrupted_rebuilding_run_still_builds_the_index_again(settings: Any) -> None:
    settings.EMBEDDING_INDEX_REBUILD_MIN_ROWS = 3
    ProductFactory.create_batch(4)

    with CaptureQueriesContext(connection) as queries, pytest.raises(Interrupted):
        embeddings_refresh(kind="products", batch_size=2, on_progress=interrupt)

    assert [sql.split(" ")[0] for sql in _index_statements(queries)] == ["DROP"] * len(
        PRODUCT_HNSW_INDEXES
    ) + ["CREATE"] * len(PRODUCT_HNSW_INDEXES)
    assert _hnsw_index_exists()


@rebuild_test
@pytest.mark.parametrize("missing", PRODUCT_HNSW_INDEXES)
def test_a_whole_table_run_that_finds_an_index_missing_builds_it_again(missing: str) -> None:
    ProductFactory.create_batch(2)
    embeddings_refresh(kind="products")
    with connection.cursor() as cursor:
        cursor.execute(f'DROP INDEX "{missing}"')

    report = embeddings_refresh(kind="products")

    assert report.embedded == 0
    assert hnsw_indexes_missing() == []


@rebuild_test
def test_a_run_over_some_ids_leaves_a_missing_index_to_a_whole_table_run() -> None:
    chosen, _ = ProductFactory.create_batch(2)
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX product_embedding_hnsw")

    report = embeddings_refresh(kind="products", ids=[chosen.pk])

    assert report.embedded == 1
    assert not _hnsw_index_exists()
    embeddings_refresh(kind="products")
    assert _hnsw_index_exists()


# --- constraints ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields",
    [{"stock": -1}, {"price": Decimal("-0.01")}, {"currency": "gbp"}],
    ids=["negative-stock", "negative-price", "lowercase-currency"],
)
def test_the_database_refuses_an_invalid_product(fields: dict[str, object]) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        ProductFactory.create(**fields)


@pytest.mark.django_db
def test_product_update_stores_tags_trimmed_lowercased_and_once() -> None:
    product = ProductFactory.create(tags=[])

    product_update(product=product, tags=[" Raw", "RAW", "Gift Idea "])

    product.refresh_from_db()
    assert product.tags == ["raw", "gift idea"]


def test_the_embedding_rate_leaves_out_the_model_load() -> None:
    report = EmbeddingReport(embedded=22, seconds=3.2, model_load_seconds=3.0)

    assert report.rows_per_second == pytest.approx(110.0)
    assert EmbeddingReport(embedded=0, seconds=1.0, model_load_seconds=1.0).rows_per_second == 0
