"""Every read of the catalog: browsing, hybrid search, and what needs (re-)embedding."""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, Generic, TypeVar, overload

import numpy as np
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import (
    BigIntegerField,
    Case,
    Expression,
    F,
    FloatField,
    Lookup,
    QuerySet,
    Value,
    When,
)
from django.db.models.sql.compiler import SQLCompiler
from pgvector import HalfVector
from pgvector.django import CosineDistance

from beemanhoney.common.lru import LruCache
from catalog.embeddings import current_model_name, embed_query
from catalog.models import (
    EMBEDDING_DIMENSIONS,
    SEARCH_CONFIG,
    Category,
    KnowledgeArticle,
    Product,
    embedding_halfvec,
)
from catalog.statement_templates import StatementTemplate

# Reciprocal rank fusion constants: the smaller one makes the top semantic ranks count for
# more than top keyword ranks, so one weak keyword match cannot bury the best semantic match
# (tuned on the demo shop's queries, see tests/catalog/test_selectors.py).
SEMANTIC_RRF_K = 20
KEYWORD_RRF_K = 60
WORD = re.compile(r"[^\W_]+")
MAX_QUERY_WORDS = 32
# Rows holding every word of the query that are keyword-ranked beside the semantic candidates.
KEYWORD_EXTRA_ROWS = 200
# What customers (the API) and the agents read of a product. The bookkeeping columns (embedding
# state, timestamps) stay behind: a page of 20 spent ~0.7 ms parsing their timestamps alone.
PRODUCT_READ_FIELDS = (
    "sku", "name", "slug", "category__name", "category__slug", "description", "price",
    "currency", "weight_grams", "stock", "is_active", "tags", "origin", "floral_source",
)  # fmt: skip
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
        Product.objects.filter(is_active=True).select_related("category").only(*PRODUCT_READ_FIELDS)
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
    by_id = (
        Product.objects.select_related("category").filter(is_active=True).order_by().in_bulk(ids)
    )
    return [by_id[pk] for pk in ids if pk in by_id]


def category_list() -> QuerySet[Category]:
    return Category.objects.order_by("name")


# enable_seqscan: pgvector costs the whole graph until a table has ~(levels + 2) x m x ef_search
# rows (~13k here), so the planner would scan and sort a 10k catalogue that the index serves 14
# times faster; bitmap scans stay allowed, so a selective filter still wins.
KNN_SETTINGS_SQL = (
    "SELECT set_config('hnsw.ef_search', %s, true),"
    " set_config('hnsw.iterative_scan', %s, true),"
    " set_config('enable_seqscan', 'off', true)"
)


def _knn_settings_params(*, iterative: bool) -> list[str]:
    """``iterative``: pgvector's iterative scan (0.8's ``strict_order``) keeps walking the graph
    until enough rows pass the filters, where without it the index yields at most ef_search
    rows. It costs 10-15% even where nothing is filtered out, hence the switch.
    """
    return [str(settings.SEARCH_HNSW_EF_SEARCH), "strict_order" if iterative else "off"]


@contextmanager
def _hnsw_search_settings(*, iterative: bool = True) -> Iterator[None]:
    """Settings for the kNN statements inside, undone on exit even within an outer transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(KNN_SETTINGS_SQL, _knn_settings_params(iterative=iterative))
        yield
        # Only reads ran: rolling back (to the savepoint, if nested) forgets the SET LOCALs.
        transaction.set_rollback(True)


# What search statements are compiled with in place of the values each search binds.
_VECTOR_SLOT = [0.0] * EMBEDDING_DIMENSIONS
_VECTOR_SLOT_TEXT = HalfVector(_VECTOR_SLOT).to_text()
_ANY_WORD_SLOT = "<any word of the query>"
_EVERY_WORD_SLOT = "<every word of the query>"


def halfvec_text(vector: list[float]) -> str:
    """``HalfVector(vector).to_text()``, ~0.3 ms faster: by lookup of each value's text."""
    bits = np.asarray(vector, dtype=np.float16).view(np.uint16).tolist()
    texts = _half_float_texts()
    return "[" + ",".join([texts[value] for value in bits]) + "]"


@lru_cache(maxsize=1)
def _half_float_texts() -> tuple[str, ...]:
    """The text of every half-precision float as pgvector writes it, by its 16 bits."""
    return tuple(map(str, np.arange(2**16, dtype=np.uint16).view(np.float16).tolist()))


@dataclass(frozen=True)
class SemanticStatement:
    """``semantic_queryset`` compiled once; each search binds its vector and words."""

    template: StatementTemplate
    limit: int

    @classmethod
    def compile(
        cls, rows: QuerySet[M], *, limit: int, columns: tuple[str, ...] = ()
    ) -> SemanticStatement:
        """``columns``: more of each row to read, after its id and keyword rank."""
        nearest = _nearest_queryset(
            rows,
            vector=_VECTOR_SLOT,
            limit=limit,
            rank=_keyword_rank(_ANY_WORD_SLOT),
            columns=columns,
        )
        template = StatementTemplate.compile(
            nearest, vector=_VECTOR_SLOT_TEXT, any_word=_ANY_WORD_SLOT
        )
        return cls(template, limit)

    def params_for(self, vector: list[float], text: str) -> list[object]:
        # No words: to_tsquery(NULL) is NULL, so every keyword rank is NULL.
        return self.template.bind(vector=halfvec_text(vector), any_word=_any_word(text))


def _knn_rows(sql: str, params: list[object], *, iterative: bool) -> list[tuple[Any, ...]]:
    """The rows of a kNN statement, run under the kNN settings."""
    server_side_binding = connection.settings_dict["OPTIONS"].get("server_side_binding")
    if connection.in_atomic_block or server_side_binding:
        with _hnsw_search_settings(iterative=iterative), connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    # Outside a transaction (a request), the settings and the statement share one round trip
    # instead of four (BEGIN, settings, statement, ROLLBACK): PostgreSQL runs a query string of
    # several statements as one implicit transaction, whose end forgets the settings, and
    # Django's default client-side binding cursor sends such a string as it is (a server-side
    # binding one would refuse it).
    with connection.cursor() as cursor:
        cursor.execute(
            f"{KNN_SETTINGS_SQL}; {sql}", [*_knn_settings_params(iterative=iterative), *params]
        )
        cursor.nextset()
        return cursor.fetchall()


def semantic_hits(
    statement: SemanticStatement, *, vector: list[float], text: str, filtered: bool
) -> list[tuple[Any, ...]]:
    """The nearest rows, nearest first: each one's id, keyword rank for ``text``
    (``semantic_queryset``) and the statement's other columns."""
    params = statement.params_for(vector, text)
    iterative = filtered or statement.limit > settings.SEARCH_HNSW_EF_SEARCH
    hits = _knn_rows(statement.template.sql, params, iterative=iterative)
    if len(hits) < statement.limit and not iterative:
        # A small catalogue, or inactive rows (or another model's) among the ef_search nearest:
        # walk on. Cheap where it happens: a large catalogue fills the limit at the first pass.
        hits = _knn_rows(statement.template.sql, params, iterative=True)
    return hits


def semantic_queryset(
    rows: QuerySet[M], *, vector: list[float], limit: int, text: str = ""
) -> QuerySet[M]:
    """``(id, keyword_rank)`` of the nearest rows by cosine distance, among those embedded by
    the configured model.

    Ordered by the same half-precision expression the HNSW index is built on (see
    ``catalog.models.embedding_halfvec``), so the planner can use the index. The keyword rank
    rides along: the rows are read from the heap for the index scan anyway, and it saves the
    hybrid search a statement on its critical path.
    """
    return _nearest_queryset(rows, vector=vector, limit=limit, rank=keyword_rank(text))


def _nearest_queryset(
    rows: QuerySet[M],
    *,
    vector: list[float],
    limit: int,
    rank: Expression,
    columns: tuple[str, ...] = (),
) -> QuerySet[M]:
    return (
        rows.filter(embedding_model=current_model_name())
        .annotate(keyword_rank=rank)
        .order_by(CosineDistance(embedding_halfvec(), HalfVector(vector)))
        .values_list("pk", "keyword_rank", *columns)[:limit]
    )


def _query_words(text: str) -> list[str]:
    return WORD.findall(text.lower())[:MAX_QUERY_WORDS]


def keyword_tsquery(text: str) -> SearchQuery | None:
    """Any of the query's words (ranked by how many match), not all of them as websearch does."""
    any_word = _any_word(text)
    if any_word is None:
        return None
    return SearchQuery(any_word, config=SEARCH_CONFIG, search_type="raw")


def _any_word(text: str) -> str | None:
    words = _query_words(text)
    return " | ".join(words) if words else None


def keyword_rank(text: str) -> Expression:
    """A row's full-text rank for any of the words of ``text``; NULL if it holds none."""
    any_word = _any_word(text)
    if any_word is None:
        return Value(None, output_field=FloatField())
    return _keyword_rank(any_word)


def _keyword_rank(any_word: str) -> Expression:
    """``keyword_rank`` for a raw tsquery of the words, ORed (``_any_word``)."""
    query = SearchQuery(any_word, config=SEARCH_CONFIG, search_type="raw")
    rank = SearchRank(F("search_vector"), query, cover_density=True)
    return Case(When(search_vector=query, then=rank), output_field=FloatField())


@dataclass(frozen=True)
class EveryWordStatement:
    """Up to ``KEYWORD_EXTRA_ROWS`` rows holding every word of a query, each with its keyword
    rank; compiled once, each search binds its words.

    Ranking every row that shares a word with the query does not scale: in a honey shop nearly
    every row says "honey" (half of a 100k catalogue for a typical query, 160 ms). The hybrid
    search ranks a bounded pool instead: the semantic candidates (ranked as they are found,
    ``semantic_queryset``) plus these rows, which are what keyword search adds that the semantic
    half may miss (an exact name, a grade, a place). See docs/BENCHMARKS.md, "Search".
    """

    template: StatementTemplate

    @classmethod
    def compile(cls, rows: QuerySet[M]) -> EveryWordStatement:
        holding = (
            rows.filter(search_vector=SearchQuery(_EVERY_WORD_SLOT, config=SEARCH_CONFIG))
            .annotate(keyword_rank=_keyword_rank(_ANY_WORD_SLOT))
            .order_by()
            .values_list("pk", "keyword_rank")[:KEYWORD_EXTRA_ROWS]
        )
        template = StatementTemplate.compile(
            holding, every_word=_EVERY_WORD_SLOT, any_word=_ANY_WORD_SLOT
        )
        return cls(template)

    def hits(self, text: str, *, using: BaseDatabaseWrapper | None = None) -> dict[int, float]:
        """Row id -> keyword rank. ``using``: a connection other than this thread's own."""
        words = _query_words(text)
        if not words:
            return {}
        params = self.template.bind(every_word=" ".join(words), any_word=" | ".join(words))
        with (using or connection).cursor() as cursor:
            cursor.execute(self.template.sql, params)
            return dict(cursor.fetchall())


def keyword_every_word_hits(rows: QuerySet[M], *, text: str) -> dict[int, float]:
    """``EveryWordStatement.hits`` over ``rows``."""
    return EveryWordStatement.compile(rows).hits(text)


def keyword_ranking(ranks: dict[int, float | None], *, limit: int) -> list[int]:
    """Ids best ranked for any of the query's words, best first (ties by id)."""
    held = {pk: rank for pk, rank in ranks.items() if rank is not None}
    return sorted(held, key=lambda pk: (-held[pk], pk))[:limit]


@dataclass(frozen=True, slots=True)
class RankedId:
    pk: int
    score: float
    semantic_rank: int | None
    keyword_rank: int | None


def _fuse(semantic: list[int], keyword: list[int], limit: int) -> list[RankedId]:
    """Reciprocal rank fusion of two ranked id lists."""
    semantic_rank = {pk: rank for rank, pk in enumerate(semantic, start=1)}
    keyword_rank = {pk: rank for rank, pk in enumerate(keyword, start=1)}
    # Semantic ids first, then those only the keyword half found: ties keep that order.
    score = {pk: 1 / (SEMANTIC_RRF_K + rank) for pk, rank in semantic_rank.items()}
    for pk, rank in keyword_rank.items():
        score[pk] = score.get(pk, 0.0) + 1 / (KEYWORD_RRF_K + rank)
    best = sorted(score, key=lambda pk: (-score[pk], semantic_rank.get(pk) or limit + 1))
    return [
        RankedId(pk, score[pk], semantic_rank.get(pk), keyword_rank.get(pk)) for pk in best[:limit]
    ]


@dataclass(frozen=True)
class SearchStatements:
    every_word: EveryWordStatement
    nearest: SemanticStatement


# Per process: (what the rows are, candidates, embedding model) -> the search's statements.
_search_statements: LruCache[SearchStatements] = LruCache(size=256)


def search_statements(
    rows: Callable[[], QuerySet[M]],
    *,
    rows_key: Hashable,
    limit: int,
    columns: tuple[str, ...] = (),
) -> SearchStatements:
    """The search statements over ``rows()``, compiled on first use (so the queryset is built
    only then). ``rows_key`` must name the rows exactly: what they are and how they are
    filtered."""

    def compile_statements() -> SearchStatements:
        queryset = rows()
        return SearchStatements(
            every_word=EveryWordStatement.compile(queryset),
            nearest=SemanticStatement.compile(queryset, limit=limit, columns=columns),
        )

    return _search_statements.get_or_make(
        (rows_key, limit, current_model_name(), columns), compile_statements
    )


@dataclass(frozen=True)
class Ranking:
    hits: list[RankedId]
    # The semantic candidates' ``columns`` (``_hybrid_ranking``) by id.
    candidate_rows: dict[int, tuple[Any, ...]]


def _hybrid_ranking(
    rows: Callable[[], QuerySet[M]],
    *,
    rows_key: Hashable,
    query: str,
    limit: int,
    filtered: bool,
    columns: tuple[str, ...] = (),
) -> Ranking:
    candidates = max(limit, settings.SEARCH_CANDIDATES)
    statements = search_statements(rows, rows_key=rows_key, limit=candidates, columns=columns)
    # The rows holding every word are read on another thread while this one embeds the query.
    # Not the other way round: this thread goes straight into the model, where a thread it
    # handed the embedding to waited ~1.5 ms for the GIL to start and ran ~1 ms slower.
    every_word = _while_this_thread_works(statements.every_word.hits, query)
    try:
        vector = embed_query(query)
    finally:
        wait([every_word])  # the connection is lent until then
    ranks: dict[int, float | None] = every_word.result()
    nearest = semantic_hits(statements.nearest, vector=vector, text=query, filtered=filtered)
    ranks |= {row[0]: row[1] for row in nearest}
    semantic = [row[0] for row in nearest]
    return Ranking(
        hits=_fuse(semantic, keyword_ranking(ranks, limit=candidates), limit),
        candidate_rows={row[0]: row[2:] for row in nearest},
    )


def _while_this_thread_works(
    read: Callable[..., T], *args: object, using: str = DEFAULT_DB_ALIAS
) -> Future[T]:
    """``read(*args, using=<this thread's connection>)`` on another thread.

    The connection is lent, so this thread must not use it until the future is done. Inside a
    transaction (tests, services), the read sees what the transaction has written.
    """
    lent = connections[using]
    lent.inc_thread_sharing()

    def on_lent_connection() -> T:
        try:
            return read(*args, using=lent)
        finally:
            lent.dec_thread_sharing()

    return _side_reads().submit(on_lent_connection)


@lru_cache(maxsize=1)
def _side_reads() -> ThreadPoolExecutor:
    """Threads for reads that overlap a request's own work, made on first use (so after any
    fork), per process. A gthread worker runs several requests at once, each may lend one."""
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="side-read")


def _hybrid_search(
    rows: QuerySet[M], *, rows_key: Hashable, query: str, limit: int, filtered: bool
) -> list[SearchHit[M]]:
    ranking = _hybrid_ranking(
        lambda: rows, rows_key=rows_key, query=query, limit=limit, filtered=filtered
    ).hits
    # order_by(): a dict needs no ORDER BY (the model's default ordering would sort by name).
    return _search_hits(ranking, rows.order_by().in_bulk([hit.pk for hit in ranking]))


def _search_hits(ranking: list[RankedId], by_id: dict[int, M]) -> list[SearchHit[M]]:
    return [
        SearchHit(
            item=by_id[hit.pk],
            score=hit.score,
            semantic_rank=hit.semantic_rank,
            keyword_rank=hit.keyword_rank,
        )
        for hit in ranking
        if hit.pk in by_id
    ]


class RankedRows(Sequence[M]):
    """Search results in rank order that load only the rows sliced out of them (one page).

    ``load(ids)``: the rows of ``ids`` that still qualify, by id.
    """

    def __init__(self, load: Callable[[list[int]], dict[int, M]], ranking: list[RankedId]) -> None:
        self._load = load
        self._ids = [hit.pk for hit in ranking]

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, index: int) -> M: ...

    @overload
    def __getitem__(self, index: slice) -> list[M]: ...

    def __getitem__(self, index: int | slice) -> M | list[M]:
        if isinstance(index, int):
            return self[index : index + 1 or None][0]
        ids = self._ids[index]
        by_id = self._load(ids)
        return [by_id[pk] for pk in ids if pk in by_id]


_IDS_SLOT = [-1]


class _AnyOf(Lookup):
    """``lhs = ANY(rhs)``: one array parameter for any number of ids, where ``__in`` compiles
    one placeholder per id (and so another statement for each number of ids)."""

    lookup_name = "any_of"

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, list]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", [*lhs_params, *rhs_params]


_PRODUCT_READ_COLUMNS = tuple(
    field.attname
    for field in Product._meta.concrete_fields
    if field.name in ("id", "category", *PRODUCT_READ_FIELDS)
)
_CATEGORY_READ_COLUMNS = ("id", "name", "slug")
_PRODUCT_ROW_PATHS = (
    *_PRODUCT_READ_COLUMNS,
    *(f"category__{column}" for column in _CATEGORY_READ_COLUMNS),
)


def _product_from_row(values: Sequence[Any]) -> Product:
    """A product (and its category) from the values of ``_PRODUCT_ROW_PATHS``, as the ORM
    builds it (``Model.from_db``)."""
    split = len(_PRODUCT_READ_COLUMNS)
    product = Product.from_db(DEFAULT_DB_ALIAS, _PRODUCT_READ_COLUMNS, values[:split])
    product.category = Category.from_db(DEFAULT_DB_ALIAS, _CATEGORY_READ_COLUMNS, values[split:])
    return product


@dataclass(frozen=True)
class ProductsByIdStatement:
    """The products of ``PRODUCT_READ_FIELDS`` by id, compiled once per filter set.

    A page of search results loaded through the ORM spent ~1.5 ms of its ~2.5 compiling the
    statement and building rows; here each page binds its ids and builds its products from
    the rows as the ORM would (``Model.from_db``).
    """

    template: StatementTemplate

    @classmethod
    def compile(cls, rows: QuerySet[Product]) -> ProductsByIdStatement:
        ids = Value(_IDS_SLOT, output_field=ArrayField(BigIntegerField()))
        by_id = rows.order_by().filter(_AnyOf(F("pk"), ids)).values_list(*_PRODUCT_ROW_PATHS)
        return cls(StatementTemplate.compile(by_id, ids=_IDS_SLOT))

    def load(self, ids: list[int]) -> dict[int, Product]:
        with connection.cursor() as cursor:
            cursor.execute(self.template.sql, self.template.bind(ids=ids))
            products = map(_product_from_row, cursor.fetchall())
            return {product.pk: product for product in products}


_products_by_id: LruCache[ProductsByIdStatement] = LruCache(size=256)


def product_search(
    *, query: str, filters: ProductFilters, limit: int | None = None
) -> list[SearchHit[Product]]:
    """Active products for ``query``, best first: pgvector kNN fused with full-text rank."""
    ranking, load = _product_ranking(
        query=query, filters=filters, limit=limit or settings.SEARCH_CANDIDATES
    )
    return _search_hits(ranking, load([hit.pk for hit in ranking]))


def product_search_rows(*, query: str, filters: ProductFilters) -> RankedRows[Product]:
    """As ``product_search``, for paging: only the rows of the page asked for are loaded."""
    ranking, load = _product_ranking(query=query, filters=filters, limit=settings.SEARCH_CANDIDATES)
    return RankedRows(load, ranking)


def _product_ranking(
    *, query: str, filters: ProductFilters, limit: int
) -> tuple[list[RankedId], Callable[[list[int]], dict[int, Product]]]:
    """The ranking, and what loads its products by id.

    The kNN statement reads the candidates' products as it finds them (+0.2 ms at 100k, where
    loading a page in a statement of its own took 1.2-2 ms); only rows that the keyword half
    alone brought in are loaded afterwards.
    """

    def rows() -> QuerySet[Product]:
        return product_list(filters=filters)

    ranking = _hybrid_ranking(
        rows,
        rows_key=("products", filters),
        query=query,
        limit=limit,
        filtered=filters != ProductFilters(),
        columns=_PRODUCT_ROW_PATHS,
    )
    by_id = _products_by_id.get_or_make(filters, lambda: ProductsByIdStatement.compile(rows()))

    def load(ids: list[int]) -> dict[int, Product]:
        found = ranking.candidate_rows
        products = {pk: _product_from_row(found[pk]) for pk in ids if pk in found}
        missing = [pk for pk in ids if pk not in found]
        return products | (by_id.load(missing) if missing else {})

    return ranking.hits, load


def knowledge_article_list(*, topic: str | None = None) -> QuerySet[KnowledgeArticle]:
    articles = KnowledgeArticle.objects.filter(is_published=True).defer(
        "embedding", "search_vector"
    )
    return articles.filter(topic=topic) if topic else articles


def knowledge_search(
    *, query: str, topic: str | None = None, limit: int = 5
) -> list[SearchHit[KnowledgeArticle]]:
    return _hybrid_search(
        knowledge_article_list(topic=topic),
        rows_key=("knowledge", topic),
        query=query,
        limit=limit,
        filtered=bool(topic),
    )
