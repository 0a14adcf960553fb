"""The statements a hybrid search runs, compiled once per process and set of rows.

The kNN statement (and its settings), the statement for the rows holding every word of a query,
the statement loading products by id, the full-text expressions they share, and the query
vector's text. ``catalog.selectors`` ranks and pages with them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, TypeVar

import numpy as np
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    Expression,
    ExpressionWrapper,
    F,
    FloatField,
    Lookup,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.db.models.sql.compiler import SQLCompiler
from pgvector import HalfVector
from pgvector.django import CosineDistance

from beemanhoney.common.lru import ExpiringLruCache, LruCache
from catalog.embeddings import current_model_name
from catalog.models import (
    EMBEDDING_DIMENSIONS,
    SEARCH_CONFIG,
    Category,
    KnowledgeArticle,
    KnowledgePassage,
    Product,
    graph_vector,
)
from catalog.query_keywords import QueryKeywords, query_keywords
from catalog.statement_templates import StatementTemplate

M = TypeVar("M", Product, KnowledgeArticle)

# Rows holding every word of the query that are keyword-ranked beside the semantic candidates.
KEYWORD_EXTRA_ROWS = 200
# The most the words more than COMMON_SHARE of the rows hold add to a keyword rank
# (catalog.query_keywords): less than one telling word held once in the lowest-weighted field
# (0.2, weight C), so a row holding a telling word outranks every row holding only common ones.
COMMON_WORD_WEIGHT = 0.1
# ts_rank_cd's normalisation 32: rank / (rank + 1), in [0, 1) however often the words occur.
_RANK_TO_UNIT_INTERVAL = 32
# What customers (the API) and the agents read of a product. The bookkeeping columns (embedding
# state, timestamps) stay behind: a page of 20 spent ~0.7 ms parsing their timestamps alone.
PRODUCT_READ_FIELDS = (
    "sku", "name", "slug", "category__name", "category__slug", "description", "price",
    "currency", "weight_grams", "stock", "is_active", "tags", "origin", "floral_source",
)  # fmt: skip


# enable_seqscan: pgvector costs the whole graph until a table has ~(levels + 2) x m x ef_search
# rows (~13k here), so the planner would scan and sort a 10k catalogue that the index serves 14
# times faster; bitmap scans stay allowed, so a selective filter still wins. enable_indexscan
# off for an exact order: it orders by the column the graphs are built over, and must not walk
# one (the filter's index still finds the rows, by a bitmap scan).
KNN_SETTINGS_SQL = (
    "SELECT set_config('hnsw.ef_search', %s, true),"
    " set_config('hnsw.iterative_scan', %s, true),"
    " set_config('enable_seqscan', 'off', true),"
    " set_config('enable_indexscan', %s, true)"
)


class IterativeScan(StrEnum):
    """pgvector's ``hnsw.iterative_scan``: whether a kNN walk goes on until enough rows pass
    the statement's filters, where without it the index yields at most ef_search rows.

    Walking on costs 10-15% even where nothing is filtered out, so an unfiltered search walks
    once. ``RELAXED`` yields the rows slightly out of distance order, but finds more of the
    nearest rows that pass a filter than ``STRICT`` at the same cost (docs/benchmarks/journal.md,
    "2026-12-01, 21:00: filtered searches"); its statements carry each row's distance to sort by.
    """

    OFF = "off"
    STRICT = "strict_order"
    RELAXED = "relaxed_order"


def _knn_settings_params(*, scan: IterativeScan, exact: bool = False) -> list[str]:
    return [str(settings.SEARCH_HNSW_EF_SEARCH), scan.value, "off" if exact else "on"]


@contextmanager
def _hnsw_search_settings(
    *, scan: IterativeScan = IterativeScan.STRICT, exact: bool = False
) -> Iterator[None]:
    """Settings for the kNN statements inside, undone on exit even within an outer transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(KNN_SETTINGS_SQL, _knn_settings_params(scan=scan, exact=exact))
        yield
        # Only reads ran: rolling back (to the savepoint, if nested) forgets the SET LOCALs.
        transaction.set_rollback(True)


# What search statements are compiled with in place of the values each search binds.
_VECTOR_SLOT = [0.0] * EMBEDDING_DIMENSIONS
_VECTOR_SLOT_TEXT = HalfVector(_VECTOR_SLOT).to_text()
_ANY_WORD_SLOT = "<any word of the query>"
_TELLING_WORD_SLOT = "<any telling word of the query>"
_COMMON_WORD_SLOT = "<any common word of the query>"
# What the keyword rank is compiled with, by slot (each search binds ``_keyword_slots``).
_KEYWORD_SLOTS = {
    "any_word": _ANY_WORD_SLOT,
    "telling_word": _TELLING_WORD_SLOT,
    "common_word": _COMMON_WORD_SLOT,
}
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
    """``semantic_queryset`` compiled once; each search binds its vector and words.

    ``filtered``: the rows are a filtered subset, walked with a relaxed iterative scan, so each
    row also carries its distance, last, to be put back in order by. ``exact``: the rows are
    ordered exactly by ``Product.embedding_half`` instead, which no index serves: for a subset
    few enough to read whole (``SearchStatements``).
    """

    template: StatementTemplate
    limit: int
    filtered: bool = False
    exact: bool = False
    # Whether an HNSW walk orders the rows (and may stop short of ``limit``); articles are
    # ordered by their nearest passage instead, every row weighed (``_nearest_queryset``).
    walks: bool = True

    @classmethod
    def compile(
        cls,
        rows: QuerySet[M],
        *,
        limit: int,
        columns: tuple[str, ...] = (),
        filtered: bool = False,
        exact: bool = False,
    ) -> SemanticStatement:
        """``columns``: more of each row to read, after its id and keyword rank."""
        walks = rows.model is not KnowledgeArticle
        nearest = _nearest_queryset(
            rows,
            vector=_VECTOR_SLOT,
            limit=limit,
            rank=_keyword_rank(**_KEYWORD_SLOTS),
            columns=columns,
            # A relaxed walk yields rows a little out of order; a statement that walks no
            # graph orders them itself.
            with_distance=filtered and not exact and walks,
            exact=exact,
        )
        template = StatementTemplate.compile(
            nearest,
            vector=_VECTOR_SLOT_TEXT,
            **_KEYWORD_SLOTS,
        )
        return cls(template, limit, filtered, exact, walks)

    def params_for(self, vector: list[float], keywords: QueryKeywords) -> list[Any]:
        # No words: to_tsquery(NULL) is NULL, so every keyword rank is NULL.
        return self.template.bind(vector=halfvec_text(vector), **_keyword_slots(keywords))


def _knn_rows(
    sql: str, params: list[Any], *, scan: IterativeScan, exact: bool = False
) -> list[tuple[Any, ...]]:
    """The rows of a kNN statement, run under the kNN settings."""
    server_side_binding = connection.settings_dict["OPTIONS"].get("server_side_binding")
    if connection.in_atomic_block or server_side_binding:
        with _hnsw_search_settings(scan=scan, exact=exact), connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    # Outside a transaction (a request), the settings and the statement share one round trip
    # instead of four (BEGIN, settings, statement, ROLLBACK): PostgreSQL runs a query string of
    # several statements as one implicit transaction, whose end forgets the settings, and
    # Django's default client-side binding cursor sends such a string as it is (a server-side
    # binding one would refuse it).
    with connection.cursor() as cursor:
        settings_params = _knn_settings_params(scan=scan, exact=exact)
        cursor.execute(f"{KNN_SETTINGS_SQL}; {sql}", [*settings_params, *params])
        cursor.nextset()
        return cursor.fetchall()


def _distance_last(hit: tuple[Any, ...]) -> float:
    # A row without a vector, which only a scan (a selective filter's plan) can bring, goes last
    # as ORDER BY puts it.
    return math.inf if hit[-1] is None else hit[-1]


def semantic_hits(
    statement: SemanticStatement, *, vector: list[float], keywords: QueryKeywords
) -> list[tuple[Any, ...]]:
    """The nearest rows, nearest first: each one's id, keyword rank for ``keywords``
    (``semantic_queryset``) and the statement's other columns."""
    params = statement.params_for(vector, keywords)
    sql = statement.template.sql
    if statement.exact or not statement.walks:
        # No walk: the kNN settings keep the plan on the filter's index (no sequential scans;
        # for an exact order no index scans either, so it walks no graph).
        return _knn_rows(sql, params, scan=IterativeScan.OFF, exact=statement.exact)
    if statement.filtered:
        hits = _knn_rows(sql, params, scan=IterativeScan.RELAXED)
        hits.sort(key=_distance_last)
        return [hit[:-1] for hit in hits]
    if statement.limit > settings.SEARCH_HNSW_EF_SEARCH:
        return _knn_rows(sql, params, scan=IterativeScan.STRICT)
    hits = _knn_rows(sql, params, scan=IterativeScan.OFF)
    if len(hits) < statement.limit:
        # A small catalogue, or inactive rows (or another model's) among the ef_search nearest:
        # walk on. Cheap where it happens: a large catalogue fills the limit at the first pass.
        hits = _knn_rows(sql, params, scan=IterativeScan.STRICT)
    return hits


def semantic_queryset(
    rows: QuerySet[M], *, vector: list[float], limit: int, keywords: QueryKeywords | None = None
) -> QuerySet[M, tuple[Any, ...]]:
    """``(id, keyword_rank)`` of the nearest rows by cosine distance, among those embedded by
    the configured model.

    Ordered by the half-precision vector the model's HNSW graphs are built over (see
    ``catalog.models.embedding_hnsw_index``), so the planner can walk one. The keyword rank
    rides along: the rows are read from the heap for the index scan anyway, and it saves the
    hybrid search a statement on its critical path.
    """
    return _nearest_queryset(
        rows, vector=vector, limit=limit, rank=keyword_rank(keywords or QueryKeywords())
    )


def _nearest_queryset(
    rows: QuerySet[M],
    *,
    vector: list[float],
    limit: int,
    rank: Expression,
    columns: tuple[str, ...] = (),
    with_distance: bool = False,
    exact: bool = False,
) -> QuerySet[M, tuple[Any, ...]]:
    # An exact order by the graphs' vector keeps off them by its settings (``semantic_hits``).
    distance: Expression = CosineDistance(graph_vector(rows.model), HalfVector(vector))
    if rows.model is KnowledgeArticle:
        # Halfway between the article's own distance and its nearest passage's: the passage
        # finds what the article's first 256 tokens leave out ("can you deliver to a BFPO
        # address?"), the article keeps its subject ("shipping to Scotland" is UK delivery).
        # On 58 questions about the demo help centre the right article came first for 54,
        # against 47 by the article alone and 54 by the passage alone
        # (docs/benchmarks/journal.md, "2026-12-03: the knowledge search, by passage").
        nearest_passage = Coalesce(_nearest_passage_distance(vector), distance)
        distance = ExpressionWrapper((distance + nearest_passage) / 2, output_field=FloatField())
    rows = rows.filter(embedding_model=current_model_name())
    if exact:
        # PostgreSQL computes the columns of every row it sorts: the nearest are found by id
        # alone (ranking all of a category's rows took 28 ms of 29 at 100k products, where the
        # ids take ~15), then read with their keyword ranks and columns.
        rows = rows.filter(pk__in=Subquery(rows.order_by(distance).values("pk")[:limit]))
    nearest = rows.annotate(keyword_rank=rank).order_by(distance)
    if with_distance:
        nearest = nearest.annotate(distance=distance)
        columns = (*columns, "distance")
    return nearest.values_list("pk", "keyword_rank", *columns)[:limit]


def _nearest_passage_distance(vector: list[float]) -> Subquery:
    """The cosine distance of an article's nearest passage (``KnowledgePassage``); NULL for
    an article whose passages are not written yet, which then goes by its own embedding."""
    nearest = (
        KnowledgePassage.objects.filter(article=OuterRef("pk"))
        .annotate(distance=CosineDistance("embedding", HalfVector(vector)))
        .order_by("distance")
        .values("distance")[:1]
    )
    return Subquery(nearest, output_field=FloatField())


def _any_word(words: Sequence[str]) -> str | None:
    """Any of the words (ranked by how many match), not all of them as websearch does."""
    return " | ".join(words) if words else None


def _keyword_slots(keywords: QueryKeywords) -> dict[str, str | None]:
    return {
        "any_word": _any_word(keywords.words),
        "telling_word": _any_word(keywords.telling),
        "common_word": _any_word(keywords.common),
    }


def keyword_rank(keywords: QueryKeywords) -> Expression:
    """A row's full-text rank for any of the words; NULL if it holds none."""
    if not keywords.words:
        return Value(None, output_field=FloatField())
    return _keyword_rank(**_keyword_slots(keywords))


def _keyword_rank(
    any_word: str | None, telling_word: str | None, common_word: str | None
) -> Expression:
    """``keyword_rank`` for raw tsqueries of the words, the telling and the common ones, ORed."""
    rank = _rank_for(telling_word, common_word)
    return Case(When(search_vector=_or_query(any_word), then=rank), output_field=FloatField())


def _or_query(words: str | None) -> SearchQuery:
    """The raw tsquery of words ORed (``_any_word``)."""
    return SearchQuery(Value(words), config=SEARCH_CONFIG, search_type="raw")


def _rank_for(telling_word: str | None, common_word: str | None) -> Expression:
    """A row's rank for the telling words, plus less than ``COMMON_WORD_WEIGHT`` for the
    common ones (none: NULL, and ts_rank_cd is not called): every keyword rank a search fuses
    is this one."""
    telling_rank = SearchRank(F("search_vector"), _or_query(telling_word), cover_density=True)
    common_rank = SearchRank(
        F("search_vector"),
        _or_query(common_word),
        cover_density=True,
        normalization=_RANK_TO_UNIT_INTERVAL,
    )
    return telling_rank + Value(COMMON_WORD_WEIGHT) * Coalesce(common_rank, Value(0.0))


def any_word_hits(rows: QuerySet[M], keywords: QueryKeywords, *, limit: int) -> dict[int, float]:
    """The ``limit`` rows best ranked for the words, by id: the keyword half alone, for a search
    without a query vector. Only rows holding a telling word qualify: those holding only common
    ones would rank after them, and are most of the catalogue. It ranks every row that
    qualifies, so it is slow on a large catalogue (~110 ms at 100k; docs/benchmarks/journal.md,
    2026-12-01: "common words in the keyword rank")."""
    if not keywords.words:
        return {}
    slots = _keyword_slots(keywords)
    ranked = (
        rows.filter(search_vector=_or_query(slots["telling_word"]))
        .annotate(keyword_rank=_rank_for(slots["telling_word"], slots["common_word"]))
        .order_by("-keyword_rank", "pk")
    )
    return dict(ranked.values_list("pk", "keyword_rank")[:limit])


@dataclass(frozen=True)
class EveryWordStatement:
    """Up to ``KEYWORD_EXTRA_ROWS`` rows holding every word of a query, each with its keyword
    rank; compiled once, each search binds its words.

    Ranking every row that shares a word with the query does not scale: in a honey shop nearly
    every row says "honey" (half of a 100k catalogue for a typical query, 160 ms). The hybrid
    search ranks a bounded pool instead: the semantic candidates (ranked as they are found,
    ``semantic_queryset``) plus these rows, which are what keyword search adds that the semantic
    half may miss (an exact name, a grade, a place). See docs/benchmarks/journal.md,
    "2026-11-28, 15:25: the record run, its machine and method", its keyword SQL options.
    """

    template: StatementTemplate

    @classmethod
    def compile(cls, rows: QuerySet[M]) -> EveryWordStatement:
        embedded = Q(embedding_model=current_model_name(), embedding__isnull=False)
        holding = (
            rows.filter(search_vector=SearchQuery(_EVERY_WORD_SLOT, config=SEARCH_CONFIG))
            .annotate(
                keyword_rank=_keyword_rank(**_KEYWORD_SLOTS),
                embedded=ExpressionWrapper(embedded, output_field=BooleanField()),
            )
            .order_by()
            .values_list("pk", "keyword_rank", "embedded")[:KEYWORD_EXTRA_ROWS]
        )
        template = StatementTemplate.compile(
            holding,
            every_word=_EVERY_WORD_SLOT,
            **_KEYWORD_SLOTS,
        )
        return cls(template)

    def hits(
        self, keywords: QueryKeywords, *, using: BaseDatabaseWrapper | None = None
    ) -> EveryWordHits:
        """The rows holding every telling word. ``using``: a connection other than this
        thread's own."""
        if not keywords.words:
            return EveryWordHits({})
        params = self.template.bind(
            every_word=" ".join(keywords.telling), **_keyword_slots(keywords)
        )
        with (using or connection).cursor() as cursor:
            cursor.execute(self.template.sql, params)
            rows = cursor.fetchall()
        return EveryWordHits(
            {pk: rank for pk, rank, _ in rows},
            frozenset(pk for pk, _, embedded in rows if not embedded),
        )


@dataclass(frozen=True)
class EveryWordHits:
    """Row id -> keyword rank, for the rows holding every telling word of a query; and those
    of them the configured model has not embedded yet (saved a moment ago, or waiting for the
    backfill after a model switch), which the semantic half cannot find."""

    ranks: dict[int, float]
    unembedded: frozenset[int] = frozenset()


# How long a process trusts what it counted (``FewRowsStatement``): counting a category of 7k
# products at 100k took ~14 ms, more than the query embedding it runs beside.
FEW_ROWS_TTL_SECONDS = 60.0
_few_rows_counted: ExpiringLruCache[bool] = ExpiringLruCache(
    size=1024, max_age=FEW_ROWS_TTL_SECONDS
)


def forget_few_rows() -> None:
    """Count again at the next search (after a test changes the catalogue, say)."""
    _few_rows_counted.clear()


@dataclass(frozen=True)
class ExactOrderBound:
    """The most rows a search orders exactly instead of walking ``graph``, an HNSW index: at
    most ``most``, and at most √(``scale`` * the rows the graph holds) as PostgreSQL last counted
    them (``pg_class.reltuples``: a build, ANALYZE or VACUUM; ``most`` alone until then). A walk
    yields the rows that pass a filter at a cost that follows the share of the graph they are
    (it reads past the others); an exact order, at a cost that follows their number: the two
    meet where the rows are about √(scale * the graph's rows)."""

    most: int
    graph: str
    scale: int


@dataclass(frozen=True)
class FewRowsStatement:
    """Whether a set of rows is within an ``ExactOrderBound``, reading no more than one row past
    its ``most``; counted at most every ``FEW_ROWS_TTL_SECONDS`` per process."""

    sql: str
    params: tuple[Any, ...]

    @classmethod
    def compile(cls, rows: QuerySet[Any], bound: ExactOrderBound) -> FewRowsStatement:
        some = rows.order_by().values("pk")[: bound.most + 1]
        sql, params = some.query.sql_with_params()
        # reltuples is -1 (or 0) until counted: NULL then, as for a graph that is missing, and
        # LEAST leaves NULLs out.
        graph_rows = "SELECT NULLIF(GREATEST(reltuples, 0), 0) FROM pg_class WHERE oid ="
        # A queryset's SQL with its parameters left out (as Django's own subqueries are).
        return cls(
            f"SELECT count(*) <= LEAST(%s, sqrt(%s * ({graph_rows} to_regclass(%s))))"  # noqa: S608
            f" FROM ({sql}) AS some_rows",
            (bound.most, bound.scale, bound.graph, *params),
        )

    def holds(self, *, using: BaseDatabaseWrapper | None = None) -> bool:
        return _few_rows_counted.get_or_make(self, lambda: self._count(using or connection))

    def _count(self, db: BaseDatabaseWrapper) -> bool:
        with db.cursor() as cursor:
            cursor.execute(self.sql, self.params)
            return cursor.fetchone()[0]


@dataclass(frozen=True)
class SideReads:
    """What a search reads beside the query embedding (``SearchStatements.side_reads``)."""

    keywords: QueryKeywords
    # The rows holding every telling word: their keyword ranks, and which are not embedded yet.
    every_word: EveryWordHits
    # Whether the rows are few enough to order exactly (``SearchStatements.nearest_exact``).
    few_rows: bool


@dataclass(frozen=True)
class SearchStatements:
    every_word: EveryWordStatement
    nearest: SemanticStatement
    table: str
    # For rows an index finds (a category's, say): the kNN statement that orders them exactly
    # instead of walking the graph for them, and the check that they are few enough for it.
    nearest_exact: SemanticStatement | None = None
    few_rows: FewRowsStatement | None = None

    def side_reads(self, text: str, *, using: BaseDatabaseWrapper | None = None) -> SideReads:
        """The keywords of ``text`` (misspelt words put right: ``catalog.spelling``), the rows
        holding every telling one with their ranks, and whether the rows are few: the reads a
        search makes beside the query embedding."""
        keywords = query_keywords(text, table=self.table, using=using, correct_spelling=True)
        few_rows = self.few_rows is not None and self.few_rows.holds(using=using)
        return SideReads(keywords, self.every_word.hits(keywords, using=using), few_rows)

    def nearest_for(self, reads: SideReads) -> SemanticStatement:
        if reads.few_rows and self.nearest_exact is not None:
            return self.nearest_exact
        return self.nearest


# Per process: (what the rows are, candidates, embedding model) -> the search's statements.
_search_statements: LruCache[SearchStatements] = LruCache(size=256)


def search_statements(
    rows: Callable[[], QuerySet[M]],
    *,
    rows_key: Hashable,
    limit: int,
    columns: tuple[str, ...] = (),
    filtered: bool = False,
    exact_order: ExactOrderBound | None = None,
) -> SearchStatements:
    """The search statements over ``rows()``, compiled on first use (so the queryset is built
    only then). ``rows_key`` must name the rows exactly: what they are and how they are
    filtered; ``filtered``: whether they are a filtered subset (``SemanticStatement``).
    ``exact_order``: order the rows exactly where they are within it (products whose filter an
    index serves only: the exact order reads every row that passes it)."""

    def compile_statements() -> SearchStatements:
        queryset = rows()
        return SearchStatements(
            every_word=EveryWordStatement.compile(queryset),
            nearest=SemanticStatement.compile(
                queryset, limit=limit, columns=columns, filtered=filtered
            ),
            table=queryset.model._meta.db_table,
            nearest_exact=(
                SemanticStatement.compile(
                    queryset, limit=limit, columns=columns, filtered=filtered, exact=True
                )
                if exact_order is not None
                else None
            ),
            few_rows=(
                FewRowsStatement.compile(queryset, exact_order) if exact_order is not None else None
            ),
        )

    return _search_statements.get_or_make(
        (rows_key, limit, current_model_name(), columns, filtered, exact_order),
        compile_statements,
    )


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
PRODUCT_ROW_PATHS = (
    *_PRODUCT_READ_COLUMNS,
    *(f"category__{column}" for column in _CATEGORY_READ_COLUMNS),
)


def product_from_row(values: Sequence[Any]) -> Product:
    """A product (and its category) from the values of ``PRODUCT_ROW_PATHS``, as the ORM
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
        by_id = rows.order_by().filter(_AnyOf(F("pk"), ids)).values_list(*PRODUCT_ROW_PATHS)
        return cls(StatementTemplate.compile(by_id, ids=_IDS_SLOT))

    def load(self, ids: list[int]) -> dict[int, Product]:
        with connection.cursor() as cursor:
            cursor.execute(self.template.sql, self.template.bind(ids=ids))
            products = map(product_from_row, cursor.fetchall())
            return {product.pk: product for product in products}


_products_by_id: LruCache[ProductsByIdStatement] = LruCache(size=256)


def products_by_id(
    rows: Callable[[], QuerySet[Product]], *, rows_key: Hashable
) -> ProductsByIdStatement:
    """``ProductsByIdStatement`` over ``rows()``, compiled on first use (``search_statements``
    says what ``rows_key`` must be)."""
    return _products_by_id.get_or_make(rows_key, lambda: ProductsByIdStatement.compile(rows()))
