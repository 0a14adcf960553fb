import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.catalog.factories import CategoryFactory

BEFORE = ("catalog", "0021_product_graphs_over_the_stored_halfvec")
AFTER = ("catalog", "0022_product_tags_composed")


@pytest.mark.django_db(transaction=True)
def test_tags_stored_with_combining_accents_are_composed_and_their_repeats_dropped() -> None:
    category = CategoryFactory.create()
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    old_product = executor.loader.project_state([BEFORE]).apps.get_model("catalog", "Product")
    written = old_product.objects.create(
        sku="MAN-NFD",
        name="Manuka",
        slug="manuka",
        category_id=category.pk,
        price="10.00",
        tags=["ma\u0304nuka", "m\u0101nuka", "raw"],
    )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([AFTER])
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())  # as the other tests expect

    with connection.cursor() as cursor:
        cursor.execute("SELECT tags FROM catalog_product WHERE id = %s", [written.pk])
        assert cursor.fetchone()[0] == ["m\u0101nuka", "raw"]
