import pytest

from catalog.models import Product
from catalog.query_keywords import (
    QueryKeywords,
    common_lexemes,
    query_keywords,
    query_words,
)
from catalog.selectors import ProductFilters, product_search
from catalog.services import catalog_statistics_refresh, embeddings_refresh
from tests.catalog.factories import ProductFactory
from tests.catalog.search_support import shop_where_most_products_say_honey

PRODUCTS = Product._meta.db_table


def test_a_query_is_split_into_lower_case_words() -> None:
    assert query_words("Honey-Dipper, for 2!") == ["honey", "dipper", "for", "2"]


def test_a_query_s_words_are_read_without_accents_however_they_are_written() -> None:
    # "mānuka" with a combining macron (macOS) was two words, "ma" and "nuka".
    assert query_words("Ma\u0304nuka CR\u00c8ME br\u00fbl\u00e9e \u00c6r\u00f8") == [
        "manuka",
        "creme",
        "brulee",
        "\u00e6r\u00f8",
    ]


@pytest.mark.django_db
def test_a_word_most_rows_hold_is_a_keyword_but_not_a_telling_one() -> None:
    shop_where_most_products_say_honey()

    keywords = query_keywords("Honey for a sore throat", table=PRODUCTS)

    assert keywords == QueryKeywords(("honey", "sore", "throat"), ("sore", "throat"))
    assert "honey" in common_lexemes(PRODUCTS)


@pytest.mark.django_db
def test_every_keyword_tells_when_all_of_them_are_common() -> None:
    shop_where_most_products_say_honey()

    assert query_keywords("honey", table=PRODUCTS) == QueryKeywords(("honey",), ("honey",))
    assert query_keywords("for a", table=PRODUCTS) == QueryKeywords()


@pytest.mark.django_db
def test_a_table_analysed_empty_has_no_common_words() -> None:
    shop_where_most_products_say_honey()
    Product.objects.all().delete()

    catalog_statistics_refresh()

    assert common_lexemes(PRODUCTS) == frozenset()


@pytest.mark.django_db
def test_refreshing_the_statistics_forgets_the_common_words_read_before() -> None:
    assert common_lexemes(PRODUCTS) == frozenset()
    shop_where_most_products_say_honey()

    assert "honey" in common_lexemes(PRODUCTS)


@pytest.mark.django_db
def test_a_telling_word_outranks_a_common_word_said_often() -> None:
    shop_where_most_products_say_honey()
    honey_said_often = ProductFactory.create(
        name="Honey Honey", description="Honey, honey and more honey, from a honey farm."
    )
    throat = Product.objects.get(name="Propolis Spray")
    catalog_statistics_refresh()
    embeddings_refresh(kind="products")

    hits = product_search(query="honey throat", filters=ProductFilters())

    keyword_rank = {hit.item: hit.keyword_rank for hit in hits}
    assert keyword_rank[throat] == 1
    assert keyword_rank[honey_said_often] == 2
