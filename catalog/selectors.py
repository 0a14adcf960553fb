"""Every read of the catalog: browsing, hybrid search, and what needs (re-)embedding."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Generic, TypeVar

from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection, transaction
from django.db.models import F, QuerySet
from pgvector.django import CosineDistance

from catalog.embeddings import current_model_name, embed_query
from catalog.models import SEARCH_CONFIG, Category, KnowledgeArticle, Product

# Reciprocal rank fusion constants: the smaller one makes the top semantic ranks count for
# more than top keyword ranks, so one weak keyword match cannot bury the best semantic match
# (tuned on the demo shop's queries, see tests/catalog/test_selectors.py).
SEMANTIC_RRF_K = 20
KEYWORD_RRF_K = 60
WORD = re.compile(r"[^\W_]+")
MAX_QUERY_WORDS = 32
T = TypeVar("T")
M = TypeVar("M", Product, KnowledgeArticle)


@dataclass(frozen=True)
class ProductFilters:
    category: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class SearchHit(Generic[T]):
    item: T
    score: float
    semantic_rank: int | None
    keyword_rank: int | None


def product_list(*, filters: ProductFilters) -> QuerySet[Product]:
    """Active products matching ``filters``, in catalogue order."""
    products = (
        Product.objects.filter(is_active=True)
        .select_related("category")
        .defer("embedding", "search_vector")
    )
    if filters.category:
        products = products.filter(category__slug=filters.category)
    if filters.min_price is not None:
        products = products.filter(price__gte=filters.min_price)
    if filters.max_price is not None:
        products = products.filter(price__lte=filters.max_price)
    if filters.in_stock is True:
        products = products.filter(stock__gt=0)
    elif filters.in_stock is False:
        products = products.filter(stock=0)
    if filters.tags:
        products = products.filter(tags__contains=list(filters.tags))
    return products


def product_get(*, sku: str) -> Product | None:
    return Product.objects.select_related("category").filter(sku=sku, is_active=True).first()


def products_get_many(*, ids: list[int]) -> list[Product]:
    """Active products in the order of ``ids``."""
    by_id = Product.objects.select_related("category").filter(is_active=True).in_bulk(ids)
    return [by_id[pk] for pk in ids if pk in by_id]


def category_list() -> QuerySet[Category]:
    return Category.objects.order_by("name")


@contextmanager
def _hnsw_search_settings() -> Iterator[None]:
    """Recall-oriented HNSW settings for the statements inside, scoped to one transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.ef_search = %s", [settings.SEARCH_HNSW_EF_SEARCH])
        # With filters, keep scanning the graph until enough rows pass them (pgvector 0.8).
        cursor.execute("SET LOCAL hnsw.iterative_scan = strict_order")
        yield


def semantic_queryset(rows: QuerySet[M], *, vector: list[float], limit: int) -> QuerySet[M]:
    """Ids of the nearest rows by cosine distance, among those embedded by the configured model."""
    return (
        rows.filter(embedding_model=current_model_name())
        .order_by(CosineDistance("embedding", vector))
        .values_list("pk", flat=True)[:limit]
    )


def keyword_tsquery(text: str) -> SearchQuery | None:
    """Any of the query's words (ranked by how many match), not all of them as websearch does."""
    words = WORD.findall(text.lower())[:MAX_QUERY_WORDS]
    if not words:
        return None
    return SearchQuery(" | ".join(words), config=SEARCH_CONFIG, search_type="raw")


def keyword_queryset(rows: QuerySet[M], *, text: str, limit: int) -> QuerySet[M]:
    query = keyword_tsquery(text)
    if query is None:
        return rows.none().values_list("pk", flat=True)
    return (
        rows.filter(search_vector=query)
        .annotate(rank=SearchRank(F("search_vector"), query, cover_density=True))
        .order_by("-rank", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def _fuse(
    semantic: list[int], keyword: list[int], limit: int
) -> list[tuple[int, float, int | None, int | None]]:
    """Reciprocal rank fusion of two ranked id lists: (id, score, semantic rank, keyword rank)."""
    semantic_rank = {pk: rank for rank, pk in enumerate(semantic, start=1)}
    keyword_rank = {pk: rank for rank, pk in enumerate(keyword, start=1)}
    fused = [
        (
            pk,
            sum(
                1 / (k + ranks[pk])
                for ranks, k in ((semantic_rank, SEMANTIC_RRF_K), (keyword_rank, KEYWORD_RRF_K))
                if pk in ranks
            ),
            semantic_rank.get(pk),
            keyword_rank.get(pk),
        )
        for pk in dict.fromkeys([*semantic, *keyword])
    ]
    fused.sort(key=lambda hit: (-hit[1], hit[2] or limit + 1))
    return fused[:limit]


def _hybrid_search(rows: QuerySet[M], *, query: str, limit: int) -> list[SearchHit[M]]:
    candidates = max(limit, settings.SEARCH_CANDIDATES)
    vector = embed_query(query)
    with _hnsw_search_settings():
        semantic = list(semantic_queryset(rows, vector=vector, limit=candidates))
        keyword = list(keyword_queryset(rows, text=query, limit=candidates))
    fused = _fuse(semantic, keyword, limit)
    by_id = rows.in_bulk([pk for pk, *_ in fused])
    return [
        SearchHit(item=by_id[pk], score=score, semantic_rank=sem, keyword_rank=kw)
        for pk, score, sem, kw in fused
        if pk in by_id
    ]


def product_search(
    *, query: str, filters: ProductFilters, limit: int | None = None
) -> list[SearchHit[Product]]:
    """Active products for ``query``, best first: pgvector kNN fused with full-text rank."""
    return _hybrid_search(
        product_list(filters=filters), query=query, limit=limit or settings.SEARCH_CANDIDATES
    )


def knowledge_article_list(*, topic: str | None = None) -> QuerySet[KnowledgeArticle]:
    articles = KnowledgeArticle.objects.filter(is_published=True).defer(
        "embedding", "search_vector"
    )
    return articles.filter(topic=topic) if topic else articles


def knowledge_search(
    *, query: str, topic: str | None = None, limit: int = 5
) -> list[SearchHit[KnowledgeArticle]]:
    return _hybrid_search(knowledge_article_list(topic=topic), query=query, limit=limit)
