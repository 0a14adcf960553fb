"""Every read of the catalog: browsing and hybrid search (ranking, fusion, paging).

The SQL a search runs, compiled once per process and filter set, is in
``catalog.search_statements``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any, Generic, TypeVar, overload

from django.conf import settings
from django.contrib.postgres.search import SearchQuery
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import (
    BooleanField,
    CharField,
    ExpressionWrapper,
    F,
    Min,
    OrderBy,
    Q,
    QuerySet,
    Value,
)
from django.db.models.functions import Lower
from django.db.models.lookups import Exact
from psycopg import sql

from catalog.embeddings import (
    current_model_name,
    embed_query,
    query_embedding_errors,
    text_hash_sql,
)
from catalog.models import (
    SEARCH_CONFIG,
    WITHOUT_ACCENTS_SQL,
    Category,
    KnowledgeArticle,
    KnowledgePassage,
    Product,
    lowered_without_accents,
    name_order,
    product_graph_walked,
)
from catalog.query_intent import (
    QueryIntent,
    ordered_by_intent,
    query_intent_read,
    query_subject,
    reordered_in_best_category,
)
from catalog.query_keywords import query_keywords, query_words
from catalog.search_statements import (
    PRODUCT_READ_FIELDS,
    PRODUCT_ROW_PATHS,
    ExactOrderBound,
    SearchStatements,
    any_word_hits,
    product_from_row,
    products_by_id,
    search_statements,
    semantic_hits,
)
from catalog.spelling import spelling_corrected

logger = logging.getLogger(__name__)
# Reciprocal rank fusion constants: the smaller one makes the top semantic ranks count for
# more than top keyword ranks, so one weak keyword match cannot bury the best semantic match
# (tuned on the demo shop's queries, see tests/catalog/test_selectors.py).
SEMANTIC_RRF_K = 20
KEYWORD_RRF_K = 60
# An exact match (``_fuse``) is a query whose telling words few rows hold all of: one product
# holds "UMF 15", where hundreds of a large catalogue hold "cheese" and "Italy" together.
EXACT_MATCH_MAX_ROWS = 10
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


class ProductSort(StrEnum):
    """What a client may sort products by (``?ordering=``); "-" puts the most first. Each has
    an index (``Product.Meta.indexes``), read backwards for "-"."""

    PRICE = "price"
    PRICE_DESCENDING = "-price"
    NAME = "name"
    NAME_DESCENDING = "-name"

    @property
    def field(self) -> str:
        return self.value.removeprefix("-")

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")

    def order_by(self) -> list[OrderBy]:
        """The ``order_by()`` arguments; ties by id, in the same direction (so one index scan
        serves both). Names as ``name_order``, which ``value_of`` matches."""
        keys = [name_order() if self.field == "name" else F(self.field), F("pk")]
        return [key.desc() if self.descending else key.asc() for key in keys]

    def value_of(self, product: Product) -> Any:
        value = getattr(product, self.field)
        return lowered_without_accents(value) if isinstance(value, str) else value


def product_list(*, filters: ProductFilters, sort: ProductSort | None = None) -> QuerySet[Product]:
    """Active products matching ``filters``, in catalogue order or by ``sort`` (then by id)."""
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
    return products.order_by(*sort.order_by()) if sort else products


def product_get(*, sku: str, include_inactive: bool = False) -> Product | None:
    """The product with ``sku``; an inactive one only with ``include_inactive`` (for staff)."""
    products = Product.objects.select_related("category").only(*PRODUCT_READ_FIELDS)
    if not include_inactive:
        products = products.filter(is_active=True)
    return products.filter(sku=sku).first()


def product_lowest_price(*, names: Sequence[str]) -> Decimal | None:
    """The lowest price of the active products named exactly one of ``names``."""
    named = Product.objects.filter(is_active=True, name__in=names)
    lowest: Decimal | None = named.aggregate(lowest=Min("price"))["lowest"]
    return lowest


def products_are_named(*, text: str, apart_from: str = "", at_least_words: int = 1) -> bool:
    """Whether ``text`` names products: its words (``at_least_words`` or more, stop words
    aside) are all in the name or floral source of 1 to ``EXACT_MATCH_MAX_ROWS`` active
    products; with ``apart_from``, none of those holds there a telling word of it.

    "and the wildflower 1kg?" names products apart from "your strongest manuka"; "what about
    the UMF 15+?" names a manuka, "and the heather one?" after "creamed honey" the creamed
    heather, and "and in stock?" and "and the 250g?" (a dozen products) name none."""
    table = Product._meta.db_table
    words = query_keywords(text, table=table, correct_spelling=True).words
    if len(words) < max(at_least_words, 1):
        return False
    subject = (
        query_keywords(apart_from, table=table, correct_spelling=True).telling if apart_from else ()
    )
    shares_subject = (
        ExpressionWrapper(Q(search_vector=_named_by(subject, "|")), output_field=BooleanField())
        if subject
        else Value(False)
    )
    named = (
        Product.objects.filter(is_active=True, search_vector=_named_by(words, "&"))
        .annotate(shares_subject=shares_subject)
        .values_list("shares_subject", flat=True)[: EXACT_MATCH_MAX_ROWS + 1]
    )
    shares = list(named)
    return 0 < len(shares) <= EXACT_MATCH_MAX_ROWS and not any(shares)


def product_get_by_name(*, name: str) -> Product | None:
    """The active product of exactly this name (the offline assistant lists products by name)."""
    return Product.objects.filter(is_active=True, name=name).first()


def product_named_in(*, text: str) -> Product | None:
    """The one active product whose name or floral source holds every word of ``text`` that
    some active product's does ("is the glass honey pot dishwasher safe?": the Glass Honey Pot
    with Dipper), stop words aside, or of several that do, the one whose name holds them ("the
    acacia honey": the Acacia Raw Honey, not the four infused honeys made from acacia); None
    when no word is, or more than one product holds them."""
    table = Product._meta.db_table
    active = Product.objects.filter(is_active=True)
    held = [
        word
        for word in query_keywords(text, table=table, correct_spelling=True).words
        if active.filter(search_vector=_named_by([word], "&")).exists()
    ]
    if not held:
        return None
    named = list(active.filter(search_vector=_named_by(held, "&"))[:2])
    if len(named) > 1:
        named = list(active.filter(search_vector=_named_by(held, "&", weights="A"))[:2])
    return named[0] if len(named) == 1 else None


def catalog_shares_a_word(*, text: str) -> bool:
    """Whether a word of ``text`` is in an active product's name or floral source, or in a
    published help article's title (their search vectors' weight A or B, and A)."""
    words = query_words(text)
    if not words:
        return False
    titles_query = " | ".join(f"{word}:A" for word in words)
    in_titles = SearchQuery(titles_query, search_type="raw", config=SEARCH_CONFIG)
    return (
        Product.objects.filter(is_active=True, search_vector=_named_by(words, "|")).exists()
        or KnowledgeArticle.objects.filter(is_published=True, search_vector=in_titles).exists()
    )


def _named_by(words: Sequence[str], operator: str, *, weights: str = "AB") -> SearchQuery:
    """``words`` (letters and digits: ``query_words``) in a product's name or floral source (the
    search vector's weights A and B; ``weights="A"``: in its name), joined by ``operator``."""
    query = f" {operator} ".join(f"{word}:{weights}" for word in words)
    return SearchQuery(query, search_type="raw", config=SEARCH_CONFIG)


def category_list() -> QuerySet[Category]:
    return Category.objects.all()  # in name order (Category.Meta)


def category_get(*, slug: str) -> Category | None:
    return Category.objects.filter(slug=slug).first()


def category_named(*, name: str, column: str = "name") -> Category | None:
    """The category whose ``column`` (``name`` or ``slug``) is ``name`` in any case. LOWER(),
    as the unique constraint on names compares: name__iexact compares UPPER(), which differs
    for "\u0130" or the Kelvin sign, and would miss a category the constraint then refuses to
    create again."""
    same: Exact[str] = Exact(Lower(column), Lower(Value(name, output_field=CharField())))
    return Category.objects.filter(same).first()


def product_currencies(*, skus: Iterable[str]) -> dict[str, str]:
    """The currency of each product that one of ``skus`` names."""
    return dict(Product.objects.filter(sku__in=set(skus)).values_list("sku", "currency"))


def categories_named(*, names: Iterable[str]) -> dict[str, Category]:
    """Each of ``names`` with the category ``category_named`` finds for it by name, else by
    slug (a name neither finds is left out): two statements, however many names."""
    distinct = list(dict.fromkeys(names))
    if not distinct:
        return {}
    # PostgreSQL's LOWER(), as ``category_named`` compares: Python's lower() differs from it.
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, LOWER(name) FROM unnest(%s::text[]) AS name", [distinct])
        lowered: dict[str, str] = dict(cursor.fetchall())
    wanted = set(lowered.values())
    # In name order (Category.Meta): the first of two slugs that differ only in case is the
    # one ``category_named``'s first() finds.
    found = Category.objects.annotate(lower_name=Lower("name"), lower_slug=Lower("slug")).filter(
        Q(lower_name__in=wanted) | Q(lower_slug__in=wanted)
    )
    by_name: dict[str, Category] = {}
    by_slug: dict[str, Category] = {}
    for category in found:
        by_name.setdefault(category.lower_name, category)
        by_slug.setdefault(category.lower_slug, category)
    named = {name: by_name.get(lower) or by_slug.get(lower) for name, lower in lowered.items()}
    return {name: category for name, category in named.items() if category is not None}


def category_exists(*, slug: str) -> bool:
    return Category.objects.filter(slug=slug).exists()


def product_exists(*, sku: str) -> bool:
    return Product.objects.filter(sku=sku).exists()


def knowledge_article_exists(*, slug: str) -> bool:
    return KnowledgeArticle.objects.filter(slug=slug).exists()


def keyword_ranking(ranks: Mapping[int, float | None], *, limit: int) -> list[int]:
    """Ids best ranked for any of the query's words, best first (ties by id)."""
    held = {pk: rank for pk, rank in ranks.items() if rank is not None}
    return sorted(held, key=lambda pk: (-held[pk], pk))[:limit]


@dataclass(frozen=True, slots=True)
class RankedId:
    pk: int
    score: float
    semantic_rank: int | None
    keyword_rank: int | None


def _fuse(
    semantic: list[int],
    keyword: list[int],
    limit: int,
    *,
    every_word: Sequence[int] = (),
    unembedded: Collection[int] = (),
) -> list[RankedId]:
    """Reciprocal rank fusion of the ranked id lists: by meaning, by keyword rank and, for a
    query of two or more telling words that few rows hold all of, those rows.

    That third list is for the exact match. The model reads "UMF 15" as near every manuka
    grade, and ranked the UMF 10+ first; the keyword rank puts the UMF 15+ first, but in a
    fusion by rank, first against second by keyword is too little to make up for fourth
    against first by meaning. A row holding every word of such a query counts once more.

    A row of ``unembedded`` (not embedded by the configured model yet) has no rank by meaning
    to lose: its keyword rank stands in for it. A product saved a moment ago, searched by its
    very name, came 12th until its embedding landed (an import's rows wait minutes for theirs).
    """
    semantic_rank = {pk: rank for rank, pk in enumerate(semantic, start=1)}
    keyword_rank = {pk: rank for rank, pk in enumerate(keyword, start=1)}
    # Semantic ids first, then those only the keyword half found: ties keep that order.
    score = {pk: 1 / (SEMANTIC_RRF_K + rank) for pk, rank in semantic_rank.items()}
    for pk, rank in keyword_rank.items():
        score[pk] = score.get(pk, 0.0) + 1 / (KEYWORD_RRF_K + rank)
        if pk in unembedded:
            score[pk] += 1 / (SEMANTIC_RRF_K + rank)
    for rank, pk in enumerate(every_word, start=1):
        score[pk] = score.get(pk, 0.0) + 1 / (KEYWORD_RRF_K + rank)
    best = sorted(score, key=lambda pk: (-score[pk], semantic_rank.get(pk) or limit + 1))
    return [
        RankedId(pk, score[pk], semantic_rank.get(pk), keyword_rank.get(pk)) for pk in best[:limit]
    ]


@dataclass(frozen=True)
class Ranking:
    hits: list[RankedId]
    # The semantic candidates' ``columns`` (``_hybrid_ranking``) by id.
    candidate_rows: dict[int, tuple[Any, ...]]


def _hybrid_ranking(
    rows: Callable[[], QuerySet[M]],
    *,
    statements: SearchStatements,
    query: str,
    limit: int,
    exact_matches: bool = False,
) -> Ranking:
    """``statements``: those of ``rows``, compiled for ``_candidates(limit)``. ``exact_matches``:
    fuse the rows holding every telling word as a list of their own (``_fuse``). For products,
    whose names are short, that is an exact match; an article's prose holds every word of many
    questions ("how do I eat bee pollen?"), and the knowledge benchmark put the right article
    first for 2 fewer of its 58 questions with it (docs/benchmarks/journal.md,
    "2026-12-03, 11:30: exact matches in the product search")."""
    candidates = statements.nearest.limit
    # The keyword half's reads (which words to rank by, the rows holding all of them) and
    # whether the rows are few are made on another thread while this one embeds the query. Not
    # the other way round: this thread goes straight into the model, where a thread it handed
    # the embedding to waited ~1.5 ms for the GIL to start and ran ~1 ms slower.
    side_reads = _while_this_thread_works(statements.side_reads, query)
    vector: list[float] | None = None
    try:
        vector = embed_query(query)
    except query_embedding_errors():
        # Keyword ranks alone rather than no answer while the embedding API is away.
        logger.exception("catalog.search_without_embedding", extra={"query_length": len(query)})
    finally:
        wait([side_reads])  # the connection is lent until then
    reads = side_reads.result()
    keywords = reads.keywords
    if vector is not None and keywords.corrections:
        # The model read a misspelt word as typed; it places what was meant better.
        try:
            vector = embed_query(spelling_corrected(query, keywords.corrections))
        except query_embedding_errors():
            logger.exception("catalog.search_correction_not_embedded")
    ranks: dict[int, float | None] = dict(reads.every_word.ranks)
    if vector is None:
        nearest: list[tuple[Any, ...]] = []
        ranks |= any_word_hits(rows(), keywords, limit=candidates)
    else:
        nearest = semantic_hits(statements.nearest_for(reads), vector=vector, keywords=keywords)
    ranks |= {row[0]: row[1] for row in nearest}
    semantic = [row[0] for row in nearest]
    every_word = (
        keyword_ranking(reads.every_word.ranks, limit=candidates)
        if exact_matches
        and len(keywords.telling) > 1
        and len(reads.every_word.ranks) <= EXACT_MATCH_MAX_ROWS
        else []
    )
    return Ranking(
        hits=_fuse(
            semantic,
            keyword_ranking(ranks, limit=candidates),
            limit,
            every_word=every_word,
            # Without a query vector no row has a rank by meaning: none stands in.
            unembedded=reads.every_word.unembedded if vector is not None else (),
        ),
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


def _candidates(limit: int) -> int:
    """How many nearest rows a search for ``limit`` results takes to fuse."""
    return max(limit, settings.SEARCH_CANDIDATES)


def _hybrid_search(
    rows: QuerySet[M], *, rows_key: Hashable, query: str, limit: int, filtered: bool
) -> list[SearchHit[M]]:
    ranking = _hybrid_search_ranking(
        rows, rows_key=rows_key, query=query, limit=limit, filtered=filtered
    )
    return _search_hits(ranking, _rows_by_id(rows, [hit.pk for hit in ranking]))


def _hybrid_search_ranking(
    rows: QuerySet[M], *, rows_key: Hashable, query: str, limit: int, filtered: bool
) -> list[RankedId]:
    statements = search_statements(
        lambda: rows, rows_key=rows_key, limit=_candidates(limit), filtered=filtered
    )
    return _hybrid_ranking(lambda: rows, statements=statements, query=query, limit=limit).hits


def _rows_by_id(rows: QuerySet[M], ids: list[int]) -> dict[int, M]:
    # order_by(): a dict needs no ORDER BY (the model's default ordering would sort by name).
    return rows.order_by().in_bulk(ids)


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
        self._load: Callable[[list[int]], dict[int, M]] = load
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


def product_search(
    *, query: str, filters: ProductFilters, limit: int | None = None
) -> list[SearchHit[Product]]:
    """Active products for ``query``, best first: pgvector kNN fused with full-text rank, within
    the query's own price range and in its own order (``catalog.query_intent``)."""
    ranking, load = _product_ranking(
        query=query, filters=filters, limit=limit or settings.SEARCH_CANDIDATES
    )
    return _search_hits(ranking, load([hit.pk for hit in ranking]))


def product_search_rows(
    *, query: str, filters: ProductFilters, sort: ProductSort | None = None
) -> RankedRows[Product]:
    """As ``product_search``, for paging: only the rows of the page asked for are loaded.
    ``sort`` reorders the results as an order word does (``reordered_in_best_category``)."""
    ranking, load = _product_ranking(
        query=query, filters=filters, limit=settings.SEARCH_CANDIDATES, sort=sort
    )
    return RankedRows(load, ranking)


def _product_ranking(
    *, query: str, filters: ProductFilters, limit: int, sort: ProductSort | None = None
) -> tuple[list[RankedId], Callable[[list[int]], dict[int, Product]]]:
    """The ranking, and what loads its products by id. A ``sort`` is applied last, over the
    order the query's own words asked for.

    The kNN statement reads the candidates' products as it finds them (+0.2 ms at 100k, where
    loading a page in a statement of its own took 1.2-2 ms); only rows that the keyword half
    alone brought in are loaded afterwards.
    """
    intent = query_intent_read(query)
    filters = _within_intent(filters, intent)

    def rows() -> QuerySet[Product]:
        return product_list(filters=filters)

    statements = product_search_statements(filters=filters, limit=limit)
    # An order may lift any candidate into the first places: rank them all first.
    ranked = _candidates(limit) if intent.orders or sort else limit
    ranking = _hybrid_ranking(
        rows, statements=statements, query=intent.text, limit=ranked, exact_matches=True
    )
    by_id = products_by_id(rows, rows_key=("products", filters))

    def load(ids: list[int]) -> dict[int, Product]:
        found = ranking.candidate_rows
        products = {pk: product_from_row(found[pk]) for pk in ids if pk in found}
        missing = [pk for pk in ids if pk not in found]
        return products | (by_id.load(missing) if missing else {})

    if not intent.orders and sort is None:
        return ranking.hits, load
    # Ordering needs every candidate's product: load them once, and serve the page from them.
    products = load([hit.pk for hit in ranking.hits])
    named = _named_among(ranking.hits, query_subject(intent.text))
    movable = (lambda hit: named.holds(hit.pk, products.get(hit.pk))) if named else None
    hits = ranking.hits
    if len(named.products) == 1:
        # The order has nothing to choose among: the one product the query names answers it.
        hits = sorted(hits, key=lambda hit: hit.pk not in named.products)
    hits = ordered_by_intent(hits, lambda hit: products.get(hit.pk), intent.orders, movable=movable)
    if sort is not None:
        hits = reordered_in_best_category(
            hits,
            lambda hit: products.get(hit.pk),
            sort.value_of,
            descending=sort.descending,
            movable=movable,
        )
    return hits[:limit], lambda ids: {pk: products[pk] for pk in ids if pk in products}


@dataclass(frozen=True)
class Named:
    """What a query's subject names among a search's candidates: a category by its very name,
    else 1 to ``EXACT_MATCH_MAX_ROWS`` products, else nothing."""

    category_id: int | None = None
    products: frozenset[int] = frozenset()

    def __bool__(self) -> bool:
        return self.category_id is not None or bool(self.products)

    def holds(self, pk: int, product: Product | None) -> bool:
        if self.category_id is not None:
            return product is not None and product.category_id == self.category_id
        return pk in self.products


def _named_among(hits: list[RankedId], subject: str) -> Named:
    """What an order sorts, whatever the best match's category: the category whose name is the
    words of ``subject`` that some hit's name or floral source holds ("cheapest creamed honey":
    the rapeseed set honey is creamed honey not named so; "biggest comb honey": the honeycomb
    frame slab), else the hits whose name or floral source holds all those words: "cheapest
    heather honey" sorts the raw, creamed and comb heather honeys, where the best match's
    category alone (raw honey) put clover first; "cheapest vanilla honey" names one product;
    "actually, what's your cheapest candle?" the candles ("actually" names nothing). Else
    nothing: the order sorts the best match's category, as for "cheapest honey" (most products)
    or "large jar of raw honey" (names hold "jar" and "raw", none both). Stop words aside."""
    words = query_keywords(subject, table=Product._meta.db_table, correct_spelling=True).words
    if not words or not hits:
        return Named()
    # Read by primary key, over the candidates only: a bounded read, however many rows of a
    # large catalogue hold the words.
    holds = {
        f"holds_{index}": ExpressionWrapper(
            Q(search_vector=_named_by([word], "&")), output_field=BooleanField()
        )
        for index, word in enumerate(words)
    }
    rows = list(
        Product.objects.filter(pk__in=[hit.pk for hit in hits])
        .order_by()
        .annotate(**holds)
        .values_list("pk", *holds)
    )
    holding = [{row[0] for row in rows if row[1 + index]} for index in range(len(words))]
    # The words some candidate holds, each with the candidates holding it.
    held = [(word, pks) for word, pks in zip(words, holding, strict=True) if pks]
    if not held:
        return Named()
    if (category_id := _category_named_exactly([word for word, _ in held])) is not None:
        return Named(category_id=category_id)
    named = set.intersection(*[pks for _, pks in held])
    return Named(products=frozenset(named)) if len(named) <= EXACT_MATCH_MAX_ROWS else Named()


def _category_named_exactly(words: Sequence[str]) -> int | None:
    """The one category whose name's words are ``words``, no more and no fewer."""
    distinct = sorted(set(words))
    # SQL of its own: the ORM's statement took ~2 ms to build for a ~0.1 ms scan of a few rows.
    statement = sql.SQL(
        "SELECT id FROM {table} WHERE to_tsvector(%(config)s::regconfig, {name})"
        " @@ to_tsquery(%(config)s::regconfig, %(words)s)"
        " AND length(to_tsvector(%(config)s::regconfig, {name})) <= %(count)s LIMIT 2"
    ).format(
        table=sql.Identifier(Category._meta.db_table),
        name=sql.SQL(WITHOUT_ACCENTS_SQL.format("name")),
    )
    params: dict[str, str | int] = {
        "config": SEARCH_CONFIG,
        "words": " & ".join(distinct),
        "count": len(distinct),
    }
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        found = [row[0] for row in cursor.fetchall()]
    return found[0] if len(found) == 1 else None


def _within_intent(filters: ProductFilters, intent: QueryIntent) -> ProductFilters:
    """``filters`` narrowed to the price range the query states."""
    return replace(
        filters,
        min_price=max(
            (p for p in (filters.min_price, intent.min_price) if p is not None), default=None
        ),
        max_price=min(
            (p for p in (filters.max_price, intent.max_price) if p is not None), default=None
        ),
    )


def product_search_statements(*, filters: ProductFilters, limit: int) -> SearchStatements:
    """The statements a search for ``limit`` products passing ``filters`` runs, compiled once
    per process (the benchmarks time them as the search runs them)."""
    return search_statements(
        lambda: product_list(filters=filters),
        rows_key=("products", filters),
        limit=_candidates(limit),
        columns=PRODUCT_ROW_PATHS,
        filtered=filters != ProductFilters(),
        exact_order=_exact_order_bound(filters),
    )


def _exact_order_bound(filters: ProductFilters) -> ExactOrderBound | None:
    """The most products passing ``filters`` that a search orders exactly: at most
    ``SEARCH_EXACT_ORDER_MAX_ROWS`` and √(``SEARCH_EXACT_ORDER_SCALE`` * the rows of the graph
    it would walk, a price ceiling's or the whole catalogue's). None unless an index finds them
    (a category's, a tag's, a price range's): stock has none (ordering the products in stock
    would read the whole catalogue)."""
    prices = filters.min_price is not None or filters.max_price is not None
    if not (filters.category or filters.tags or prices):
        return None
    return ExactOrderBound(
        most=settings.SEARCH_EXACT_ORDER_MAX_ROWS,
        graph=product_graph_walked(filters.max_price),
        scale=settings.SEARCH_EXACT_ORDER_SCALE,
    )


class EmbeddingState(StrEnum):
    CURRENT = "current"  # made by the configured model from the row's text as it is now
    STALE = "stale"  # made by the configured model from a text that has changed since
    OTHER = "other"  # made by another model
    MISSING = "missing"


def embedding_is_current(*, model: type[Product] | type[KnowledgeArticle]) -> Q:
    """Rows of ``model`` embedded by the configured model from their text as it is now: the
    database hashes each row's text as ``text_hash(row.embedding_text())`` does."""
    return Q(
        embedding__isnull=False,
        embedding_model=current_model_name(),
        embedding_text_hash=text_hash_sql(model.embedding_text_sql()),
    )


def embeddings_left_stale(
    *, model: type[Product] | type[KnowledgeArticle], saved_before: datetime, limit: int
) -> list[int]:
    """Ids of up to ``limit`` rows saved before ``saved_before`` whose embedding is not current,
    those waiting longest first. A save queues its own embedding: these are rows whose task gave
    up (the OpenAI API away for longer than its retries) or was never sent (the broker away)."""
    stale = model.objects.filter(updated_at__lt=saved_before).exclude(
        embedding_is_current(model=model)
    )
    return list(stale.order_by("updated_at", "pk").values_list("pk", flat=True)[:limit])


def embedded_rows_in_state(*, rows: QuerySet[M], state: EmbeddingState) -> QuerySet[M]:
    """The rows of ``rows`` (products or articles) whose embedding is in ``state``."""
    model = current_model_name()
    if state is EmbeddingState.MISSING:
        return rows.filter(Q(embedding__isnull=True) | Q(embedding_model=""))
    if state is EmbeddingState.OTHER:
        return rows.filter(embedding__isnull=False).exclude(embedding_model=model)
    if state is EmbeddingState.CURRENT:
        return rows.filter(embedding_is_current(model=rows.model))
    return rows.filter(embedding__isnull=False, embedding_model=model).exclude(
        embedding_is_current(model=rows.model)
    )


def knowledge_article_list(*, topic: str | None = None) -> QuerySet[KnowledgeArticle]:
    articles = KnowledgeArticle.objects.filter(is_published=True).defer(
        *KnowledgeArticle.search_only_fields()
    )
    return articles.filter(topic=topic) if topic else articles


def knowledge_article_get(
    *, slug: str, include_unpublished: bool = False
) -> KnowledgeArticle | None:
    """The article with ``slug``; an unpublished one only with ``include_unpublished`` (for
    staff)."""
    if include_unpublished:
        articles = KnowledgeArticle.objects.defer(*KnowledgeArticle.search_only_fields())
    else:
        articles = knowledge_article_list()
    return articles.filter(slug=slug).first()


def stored_passage_vectors(*, texts: Sequence[str], model_name: str) -> dict[str, list[float]]:
    """The vector stored for each of ``texts`` that some article's passage holds, embedded by
    ``model_name`` (an article's passages are written with its own embedding, by its model)."""
    rows = KnowledgePassage.objects.filter(
        text__in=set(texts), article__embedding_model=model_name
    ).values_list("text", "embedding")
    return dict(rows)


def knowledge_question_as_meant(*, question: str) -> str:
    """``question`` with the words a help-centre search reads as misspelt put right
    (``catalog.spelling``): "where is my parcle?" as "where is my parcel?"."""
    corrections = query_keywords(
        question, table=KnowledgeArticle._meta.db_table, correct_spelling=True
    ).corrections
    return spelling_corrected(question, corrections) if corrections else question


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


def knowledge_search_rows(*, query: str, topic: str | None = None) -> RankedRows[KnowledgeArticle]:
    """As ``knowledge_search``, for paging as ``product_search_rows`` pages: the
    ``SEARCH_CANDIDATES`` best, of which only the page asked for is loaded."""
    rows = knowledge_article_list(topic=topic)
    ranking = _hybrid_search_ranking(
        rows,
        rows_key=("knowledge", topic),
        query=query,
        limit=settings.SEARCH_CANDIDATES,
        filtered=bool(topic),
    )
    return RankedRows(lambda ids: _rows_by_id(rows, ids), ranking)
