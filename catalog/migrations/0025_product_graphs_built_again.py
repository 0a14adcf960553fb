# Hand-written: the graphs 0023 dropped, built again as 0021 built them, without locking the
# catalogue's reads or writes (~80-90 s at 100,000 products for the three).

import django.contrib.postgres.indexes
import pgvector.django.indexes
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

GRAPHS = {
    "product_embedding_hnsw": None,
    "product_embedding_hnsw_le_10": 10,
    "product_embedding_hnsw_le_20": 20,
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("catalog", "0024_search_vectors_without_accents"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="product",
            index=pgvector.django.indexes.HnswIndex(
                django.contrib.postgres.indexes.OpClass(
                    models.F("embedding_half"), name="halfvec_cosine_ops"
                ),
                condition=None if ceiling is None else models.Q(("price__lte", ceiling)),
                ef_construction=256,
                m=16,
                name=name,
            ),
        )
        for name, ceiling in GRAPHS.items()
    ]
