"""Helpers shared by the search tests."""

from typing import Any

import factory
import numpy as np
from django.db import connection

from catalog.embeddings import current_model_name
from catalog.models import EMBEDDING_DIMENSIONS, Category, Product
from catalog.query_keywords import QueryKeywords, query_words
from catalog.search_statements import EveryWordStatement, SemanticStatement, semantic_hits
from catalog.services import catalog_statistics_refresh
from tests.catalog.factories import CategoryFactory, ProductFactory


def all_keywords(text: str) -> QueryKeywords:
    """Every word of ``text``, each as telling as the next: no statistics are read."""
    words = tuple(query_words(text))
    return QueryKeywords(words, words)


def nearest_hits(
    rows: Any,
    vector: Any,
    *,
    limit: int,
    filtered: bool = False,
    exact: bool = False,
    text: str = "",
) -> list[tuple[int, float | None]]:
    statement = SemanticStatement.compile(rows, limit=limit, filtered=filtered, exact=exact)
    return semantic_hits(statement, vector=list(vector), keywords=all_keywords(text))


def products_with_vectors(
    count: int, *, category: Category | None = None, **fields: Any
) -> np.ndarray:
    rng = np.random.default_rng(seed=3)
    vectors = rng.normal(size=(count, EMBEDDING_DIMENSIONS))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ProductFactory.create_batch(
        count,
        category=category or CategoryFactory.create(),
        embedding=factory.Iterator(vectors.tolist()),
        embedding_model=current_model_name(),
        **fields,
    )
    return vectors


def loaded_values(product: Product) -> dict[str, Any]:
    """What a product instance holds, its cached category included."""
    category = {k: v for k, v in vars(product.category).items() if k != "_state"}
    return {k: v for k, v in vars(product).items() if k != "_state"} | {"category": category}


def every_word_hits(rows: Any, *, text: str) -> dict[int, float]:
    """The rows of ``rows`` holding every word of ``text``, as the search reads them."""
    return EveryWordStatement.compile(rows).hits(all_keywords(text)).ranks


def shop_where_most_products_say_honey() -> Category:
    """Seven honeys, a throat spray and a candle in a category of their own, with the table's
    statistics up to date."""
    category = CategoryFactory.create()
    for name in ("Clover", "Heather", "Acacia", "Lime", "Borage", "Orange Blossom", "Manuka"):
        ProductFactory.create(name=f"{name} Honey", description=f"{name} honey.", category=category)
    ProductFactory.create(
        name="Propolis Spray", description="For a sore throat.", category=category
    )
    ProductFactory.create(name="Beeswax Candle", description="Hand-dipped.", category=category)
    catalog_statistics_refresh()
    return category


# The products' HNSW graphs: the whole table's and the price ceilings' (``Product.Meta``).
PRODUCT_HNSW_INDEXES = (
    "product_embedding_hnsw",
    "product_embedding_hnsw_le_10",
    "product_embedding_hnsw_le_20",
)


def hnsw_indexes_missing() -> list[str]:
    """Which of ``PRODUCT_HNSW_INDEXES`` the database does not have (a backfill drops them)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NULL",
            [list(PRODUCT_HNSW_INDEXES)],
        )
        return [row[0] for row in cursor.fetchall()]
