import pytest
from django.db import connection

from catalog.models import PRODUCT_GRAPH, product_price_ceiling_graph
from tests.catalog.factories import CategoryFactory, KnowledgeArticleFactory
from tests.support.migrations import migrated_through, model_as_of

BEFORE = ("catalog", "0021_product_graphs_over_the_stored_halfvec")
AFTER = ("catalog", "0022_product_tags_composed")


@pytest.mark.django_db(transaction=True)
def test_tags_stored_with_combining_accents_are_composed_and_their_repeats_dropped() -> None:
    category = CategoryFactory.create()
    old_product = model_as_of(BEFORE, "Product")
    written = old_product.objects.create(
        sku="MAN-NFD",
        name="Manuka",
        slug="manuka",
        category_id=category.pk,
        price="10.00",
        tags=["ma\u0304nuka", "m\u0101nuka", "raw"],
    )

    migrated_through(AFTER)

    with connection.cursor() as cursor:
        cursor.execute("SELECT tags FROM catalog_product WHERE id = %s", [written.pk])
        assert cursor.fetchone()[0] == ["m\u0101nuka", "raw"]


@pytest.mark.django_db(transaction=True)
def test_rows_stored_with_accents_are_found_by_words_without_them_after_the_upgrade() -> None:
    category = CategoryFactory.create()
    article = KnowledgeArticleFactory.create(title="Honey for caf\u00e9s", body="Trade terms.")
    before = ("catalog", "0022_product_tags_composed")
    after = ("catalog", "0025_product_graphs_built_again")
    old_product = model_as_of(before, "Product")
    product = old_product.objects.create(
        sku="MAN-15",
        name="M\u0101nuka Honey UMF 15+",
        slug="manuka-15",
        category_id=category.pk,
        price="10.00",
        description="Cr\u00e8me-coloured.",
    )

    migrated_through(after)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM catalog_product WHERE search_vector @@ 'manuka & creme'::tsquery"
            " UNION ALL SELECT id FROM catalog_knowledgearticle"
            " WHERE search_vector @@ 'cafe'::tsquery"
        )
        assert [row[0] for row in cursor.fetchall()] == [product.pk, article.pk]
        # The graphs were built again, and the new columns analysed for the keyword rank.
        cursor.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname LIKE %s AND i.indisvalid ORDER BY c.relname",
            [f"{PRODUCT_GRAPH}%"],
        )
        assert [row[0] for row in cursor.fetchall()] == [
            PRODUCT_GRAPH,
            product_price_ceiling_graph(10),
            product_price_ceiling_graph(20),
        ]
        cursor.execute(
            "SELECT tablename FROM pg_stats WHERE attname = 'search_vector' ORDER BY tablename"
        )
        assert [row[0] for row in cursor.fetchall()] == [
            "catalog_knowledgearticle",
            "catalog_product",
        ]


@pytest.mark.django_db(transaction=True)
def test_category_names_stored_with_runs_of_spaces_keep_one_unless_another_is_named_so() -> None:
    old_category = model_as_of(("catalog", "0028_category_order_ties_by_id"), "Category")
    spaced = old_category.objects.create(name="Raw \t Honey", slug="raw-honey")
    old_category.objects.create(name="Comb Honey", slug="comb-honey")
    clashing = old_category.objects.create(name="comb  honey", slug="comb-honey-2")

    migrated_through(("catalog", "0029_category_names_squeezed"))

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM catalog_category WHERE id IN (%s, %s) ORDER BY id",
            [spaced.pk, clashing.pk],
        )
        assert [row[0] for row in cursor.fetchall()] == ["Raw Honey", "comb  honey"]
