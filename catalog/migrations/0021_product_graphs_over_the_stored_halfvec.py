# Hand-written: each graph is built again over the stored column under a name of its own,
# without locking the catalogue's writes, and only then takes the old graph's place, so
# searches walk a graph throughout (~70 s of builds at 100k products for the three).

import django.contrib.postgres.indexes
import pgvector.django.indexes
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models

GRAPHS = {
    "product_embedding_hnsw": None,
    "product_embedding_hnsw_le_10": 10,
    "product_embedding_hnsw_le_20": 20,
}


def _built_over_the_stored_column(name: str, ceiling: int | None) -> list:
    building = f"{name}_new"
    return [
        AddIndexConcurrently(
            model_name="product",
            index=pgvector.django.indexes.HnswIndex(
                django.contrib.postgres.indexes.OpClass(
                    models.F("embedding_half"), name="halfvec_cosine_ops"
                ),
                condition=None if ceiling is None else models.Q(("price__lte", ceiling)),
                ef_construction=256,
                m=16,
                name=building,
            ),
        ),
        RemoveIndexConcurrently(model_name="product", name=name),
        migrations.RenameIndex(model_name="product", new_name=name, old_name=building),
    ]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("catalog", "0020_product_price_id_with_is_active"),
    ]

    operations = [
        operation
        for name, ceiling in GRAPHS.items()
        for operation in _built_over_the_stored_column(name, ceiling)
    ]
