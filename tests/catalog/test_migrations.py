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
