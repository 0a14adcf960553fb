import re
import time
from decimal import Decimal
from typing import Any

import factory
import numpy as np
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from pgvector import HalfVector

from catalog.embeddings import current_model_name, embed_query
from catalog.models import EMBEDDING_DIMENSIONS, PRODUCT_GRAPH, Product, product_graph_walked
from catalog.query_keywords import QueryKeywords, query_words
from catalog.search_statements import (
    FEW_ROWS_TTL_SECONDS,
    EveryWordStatement,
    ExactOrderBound,
    FewRowsStatement,
    IterativeScan,
    ProductsByIdStatement,
    SemanticStatement,
    _any_word,
    _hnsw_search_settings,
    _knn_rows,
    halfvec_text,
    search_statements,
    semantic_queryset,
)
from catalog.selectors import ProductFilters, product_list
from tests.catalog.factories import CategoryFactory, ProductFactory
from tests.catalog.search_support import (
    all_keywords,
    every_word_hits,
    loaded_values,
    nearest_hits,
    products_with_vectors,
)


def test_a_query_without_words_has_no_keyword_query() -> None:
    assert _any_word(query_words("?!  --")) is None


def _catalogue_of_random_vectors(rows: int) -> np.ndarray:
    """``rows`` products priced £3 to £40, committed and vacuumed, so the planner's estimates
    are those of a table in service."""
    # Rows other tests rolled back are still dead weight in the table; vacuum them away first,
    # as autovacuum does in production, or they swing the planner's page-based estimates.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM catalog_product")
    rng = np.random.default_rng(seed=7)
    vectors = rng.normal(size=(rows, EMBEDDING_DIMENSIONS))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    prices = [Decimal(300 + (3700 * i) // rows) / 100 for i in range(rows)]
    products = ProductFactory.build_batch(
        rows,
        category=CategoryFactory.create(),
        embedding=factory.Iterator(vectors.tolist()),
        embedding_model=current_model_name(),
        price=factory.Iterator(prices),
    )
    Product.objects.bulk_create(products, batch_size=500)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) catalog_product")
        # A snapshot another session holds (autovacuum analysing some other table) can keep
        # VACUUM from marking the new pages all-visible, and the planner then counts by a scan,
        # not an index alone (it did, once in a full run): vacuum again until they are.
        for _ in range(20):
            cursor.execute(
                "SELECT relallvisible >= relpages FROM pg_class"
                " WHERE oid = 'catalog_product'::regclass"
            )
            if cursor.fetchone()[0]:
                break
            time.sleep(0.1)
            cursor.execute("VACUUM catalog_product")
    return vectors


@pytest.mark.django_db(transaction=True)
def test_semantic_search_uses_the_hnsw_index_and_the_list_its_name_index() -> None:
    vectors = _catalogue_of_random_vectors(3000)
    query = semantic_queryset(
        product_list(filters=ProductFilters()),
        vector=vectors[0].tolist(),
        limit=10,
        keywords=all_keywords(
            "meadow honey"
        ),  # the keyword rank rides along: the index must still serve
    )

    with _hnsw_search_settings():
        plan = query.explain()
    list_plan = product_list(filters=ProductFilters())[:20].explain()
    with CaptureQueriesContext(connection) as count_query:
        product_list(filters=ProductFilters()).count()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {count_query.captured_queries[0]['sql']}")
        count_plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "Index Scan using product_embedding_hnsw on" in plan
    # The list's own index (its order) must not tempt the kNN statement, and serves the list:
    # its page in order, and its count from an index alone (the smaller of those that hold
    # is_active: the name's or the price's).
    assert "Index Scan using product_name_order" in list_plan
    assert re.search(r"Index Only Scan using product_(name_order|price_id) ", count_plan)


@pytest.mark.django_db(transaction=True)
def test_a_search_under_a_price_ceiling_walks_the_graph_of_the_products_under_it() -> None:
    vectors = _catalogue_of_random_vectors(3000)
    walked: dict[tuple[str | None, str | None], str] = {}
    for min_price, max_price in [
        (None, "9.99"),  # "under £10"
        (None, "10"),
        (None, "15"),
        (None, "20"),
        (None, "25"),
        ("5", None),
        (None, None),
    ]:
        filters = ProductFilters(
            min_price=Decimal(min_price) if min_price else None,
            max_price=Decimal(max_price) if max_price else None,
        )
        statement = SemanticStatement.compile(
            product_list(filters=filters), limit=100, filtered=True
        )
        params = statement.params_for(vectors[0].tolist(), all_keywords("meadow honey"))
        with _hnsw_search_settings(scan=IterativeScan.RELAXED), connection.cursor() as cursor:
            # A few thousand rows are cheaper sorted than walked: ask which graph a walk takes.
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            cursor.execute(f"EXPLAIN {statement.template.sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        walked[min_price, max_price] = plan.split("Index Scan using ")[1].split(" ")[0]
        # What the search's exact-order bound reckons the walk would take (catalog.selectors).
        assert product_graph_walked(filters.max_price) == walked[min_price, max_price]

    assert walked == {
        (None, "9.99"): "product_embedding_hnsw_le_10",
        (None, "10"): "product_embedding_hnsw_le_10",
        (None, "15"): "product_embedding_hnsw_le_20",
        (None, "20"): "product_embedding_hnsw_le_20",
        (None, "25"): "product_embedding_hnsw",
        ("5", None): "product_embedding_hnsw",
        (None, None): "product_embedding_hnsw",
    }


@pytest.mark.django_db
def test_semantic_hits_carry_the_keyword_rank_of_rows_holding_a_word_of_the_query() -> None:
    vector = embed_query("clove honey")
    holding = ProductFactory.create(name="Clove Honey", embedding=vector)
    without = ProductFactory.create(
        name="Beeswax Candle", description="Pure wax.", embedding=vector
    )
    Product.objects.filter(pk__in=[holding.pk, without.pk]).update(
        embedding_model=current_model_name()
    )
    rows = product_list(filters=ProductFilters()).filter(pk__in=[holding.pk, without.pk])

    ranks = dict(nearest_hits(rows, vector, limit=5, filtered=True, text="clove honey"))

    assert ranks[without.pk] is None
    holding_rank = ranks[holding.pk]
    assert holding_rank is not None
    assert holding_rank > 0


def _setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s, true)", [name])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_knn_settings_hold_inside_and_are_gone_after_even_within_a_transaction() -> None:
    names = ("enable_seqscan", "hnsw.ef_search", "hnsw.iterative_scan")
    before = tuple(_setting(name) for name in names)

    scans = {}
    for scan in IterativeScan:
        with _hnsw_search_settings(scan=scan):
            scans[scan] = tuple(_setting(name) for name in names)

    ef_search = str(settings.SEARCH_HNSW_EF_SEARCH)
    assert scans == {
        IterativeScan.OFF: ("off", ef_search, "off"),
        IterativeScan.STRICT: ("off", ef_search, "strict_order"),
        IterativeScan.RELAXED: ("off", ef_search, "relaxed_order"),
    }
    assert tuple(_setting(name) for name in names) == before
    assert before[0] == "on"


@pytest.mark.django_db(transaction=True)
def test_knn_rows_outside_a_transaction_hold_the_settings_for_one_round_trip_only() -> None:
    reads_the_settings = (
        "SELECT current_setting('enable_seqscan') || ' '"
        " || current_setting('hnsw.iterative_scan'), length(%s)"
    )

    with CaptureQueriesContext(connection) as queries:
        rows = _knn_rows(reads_the_settings, ["[0.5,0.25]"], scan=IterativeScan.STRICT)

    assert rows == [("off strict_order", len("[0.5,0.25]"))]
    assert len(queries) == 1
    assert _setting("enable_seqscan") == "on"
    assert _setting("hnsw.iterative_scan") in ("", "off", None)


def test_a_compiled_semantic_statement_is_the_queryset_for_the_vector_given_later() -> None:
    rows = product_list(filters=ProductFilters(category="manuka-honey", max_price=Decimal(30)))
    vector = np.random.default_rng(seed=5).normal(size=EMBEDDING_DIMENSIONS).tolist()

    keywords = QueryKeywords(words=("clove", "honey"), telling=("clove",))

    statement = SemanticStatement.compile(rows, limit=7)

    sql, params = semantic_queryset(
        rows, vector=vector, limit=7, keywords=keywords
    ).query.sql_with_params()
    assert (statement.template.sql, statement.params_for(vector, keywords)) == (sql, list(params))


@pytest.mark.django_db(transaction=True)
def test_semantic_hits_are_the_same_outside_a_transaction_as_inside_one() -> None:
    vectors = products_with_vectors(40)
    rows = product_list(filters=ProductFilters())

    def nearest() -> list[tuple[int, float | None]]:
        return nearest_hits(rows, vectors[5], limit=10, text="meadow honey")

    outside = nearest()
    with transaction.atomic():
        inside = nearest()

    assert outside == inside
    assert len(outside) == 10
    assert outside[0][1] is not None  # every test product says "meadow honey"


@pytest.mark.django_db
def test_an_unfiltered_search_walks_on_when_inactive_rows_leave_the_first_pass_short(
    settings: Any,
) -> None:
    settings.SEARCH_HNSW_EF_SEARCH = 25
    Product.objects.update(is_active=False)  # only this test's rows count (rolled back after)
    vectors = products_with_vectors(40, is_active=factory.Iterator([True, False]))
    rows = product_list(filters=ProductFilters())
    with _hnsw_search_settings(scan=IterativeScan.OFF):
        first_pass = [pk for pk, _ in semantic_queryset(rows, vector=vectors[0].tolist(), limit=25)]

    with CaptureQueriesContext(connection) as queries:
        hits = nearest_hits(rows, vectors[0], limit=25)

    assert len(first_pass) < 25
    assert len(hits) == 20  # every active row
    assert hits[0][0] == first_pass[0]
    assert sum("ORDER BY" in query["sql"] for query in queries) == 2


@pytest.mark.django_db
def test_asking_for_more_rows_than_ef_search_walks_on_from_the_start(settings: Any) -> None:
    settings.SEARCH_HNSW_EF_SEARCH = 10
    vectors = products_with_vectors(40)
    rows = product_list(filters=ProductFilters())

    with CaptureQueriesContext(connection) as queries:
        hits = nearest_hits(rows, vectors[0], limit=25)

    assert len(hits) == 25
    assert sum("ORDER BY" in query["sql"] for query in queries) == 1
    assert any("'strict_order'" in query["sql"] for query in queries)


@pytest.mark.django_db
def test_a_filtered_search_walks_on_relaxed_and_puts_its_rows_back_in_order() -> None:
    vectors = products_with_vectors(60, stock=factory.Iterator([25, 0]))
    category = Product.objects.latest("pk").category
    rows = product_list(filters=ProductFilters(category=category.slug, in_stock=True))
    in_stock = dict(rows.values_list("pk", "embedding"))
    query = vectors[7] + vectors[8]

    with CaptureQueriesContext(connection) as queries:
        hits = nearest_hits(rows, query, limit=40, filtered=True, text="meadow honey")

    distances = _half_cosine_distances([in_stock[pk] for pk, _ in hits], query)
    assert len(hits) == min(40, len(in_stock))
    assert all(len(hit) == 2 for hit in hits)  # (id, keyword rank): the distance is left out
    assert list(distances) == sorted(distances)
    assert any("'relaxed_order'" in query["sql"] for query in queries)


@pytest.mark.django_db
def test_a_filtered_search_puts_a_row_without_a_vector_last_where_its_plan_brings_one() -> None:
    vectors = products_with_vectors(6)
    category = Product.objects.latest("pk").category
    unembedded = ProductFactory.create(
        category=category, embedding=None, embedding_model=current_model_name()
    )
    rows = product_list(filters=ProductFilters(category=category.slug))

    ids = [pk for pk, _ in nearest_hits(rows, vectors[2], limit=10, filtered=True)]

    assert ids[0] == Product.objects.get(embedding=vectors[2].tolist()).pk
    assert unembedded.pk not in ids[:-1]


@pytest.mark.django_db
def test_search_statements_are_compiled_once_per_rows_key_limit_and_embedding_model(
    settings: Any,
) -> None:
    rows = product_list(filters=ProductFilters())
    manuka = product_list(filters=ProductFilters(category="manuka-honey"))

    first = search_statements(lambda: rows, rows_key=("products", ProductFilters()), limit=10)
    again = search_statements(lambda: manuka, rows_key=("products", ProductFilters()), limit=10)
    filtered = search_statements(
        lambda: manuka, rows_key=("products", ProductFilters(category="manuka-honey")), limit=10
    )
    longer = search_statements(lambda: rows, rows_key=("products", ProductFilters()), limit=20)
    settings.EMBEDDING_BACKEND = "openai"
    other_model = search_statements(lambda: rows, rows_key=("products", ProductFilters()), limit=10)

    assert again is first
    assert len({id(first), id(filtered), id(longer), id(other_model)}) == 4
    assert "manuka-honey" in filtered.nearest.template.params
    assert "manuka-honey" not in first.nearest.template.params
    assert current_model_name() in other_model.nearest.template.params


@pytest.mark.django_db
def test_a_query_without_words_is_ranked_by_meaning_alone() -> None:
    vectors = products_with_vectors(5)
    category = Product.objects.latest("pk").category
    rows = product_list(filters=ProductFilters(category=category.slug))

    hits = nearest_hits(rows, vectors[2], limit=5, filtered=True, text="?! --")

    assert len(hits) == 5
    assert all(rank is None for _, rank in hits)
    assert every_word_hits(rows, text="?! --") == {}


@pytest.mark.django_db
def test_products_by_id_are_the_orms_products_and_keep_to_the_filters() -> None:
    category = CategoryFactory.create()
    wanted = ProductFactory.create_batch(3, category=category)
    elsewhere = ProductFactory.create()
    rows = product_list(filters=ProductFilters(category=category.slug))
    statement = ProductsByIdStatement.compile(rows)

    loaded = statement.load([elsewhere.pk, *(product.pk for product in wanted)])

    expected = rows.order_by().in_bulk([product.pk for product in wanted])
    assert loaded == expected
    assert [loaded_values(p) for p in loaded.values()] == [
        loaded_values(p) for p in expected.values()
    ]


def test_a_query_vectors_text_is_pgvectors_own() -> None:
    rng = np.random.default_rng(seed=11)
    vectors = [
        *(rng.normal(size=EMBEDDING_DIMENSIONS) * scale for scale in (1e-6, 1e-3, 0.1, 1, 50)),
        np.array([0.0, -0.0, 6e-8, 65504.0, -1.0, 0.333]),
    ]

    texts = [halfvec_text(vector.tolist()) for vector in vectors]

    assert texts == [HalfVector(vector.tolist()).to_text() for vector in vectors]


def _half_cosine_distances(vectors: list[Any], query: Any) -> np.ndarray:
    """Each vector's cosine distance to ``query``, both in half precision (as the index and
    ``Product.embedding_half`` hold them)."""
    half = np.array(vectors, dtype=np.float16).astype(np.float64)
    half_query = np.asarray(query, dtype=np.float16).astype(np.float64)
    return 1 - half @ half_query / np.linalg.norm(half, axis=1) / np.linalg.norm(half_query)


def _half_cosine_order(vectors_by_id: dict[int, Any], query: Any) -> list[int]:
    """The ids by cosine distance between half-precision vectors, nearest first."""
    ids = list(vectors_by_id)
    distances = _half_cosine_distances([vectors_by_id[pk] for pk in ids], query)
    return [ids[at] for at in np.argsort(distances, kind="stable")]


@pytest.mark.django_db
def test_each_product_keeps_its_embedding_in_half_precision_in_the_row() -> None:
    vectors = products_with_vectors(2)
    product = Product.objects.get(embedding=vectors[0].tolist())

    Product.objects.filter(pk=product.pk).update(embedding=vectors[1].tolist())
    stored = Product.objects.values_list("embedding_half", flat=True).get(pk=product.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstorage FROM pg_attribute"
            " WHERE attrelid = 'catalog_product'::regclass AND attname = 'embedding_half'"
        )
        storage = cursor.fetchone()[0]

    assert np.array_equal(np.asarray(stored, np.float16), np.asarray(vectors[1], np.float16))
    assert storage == "m"  # in the row, not the TOAST table (migration 0010)


@pytest.mark.django_db
def test_an_exact_search_orders_every_row_that_passes_by_its_stored_half_vector() -> None:
    vectors = products_with_vectors(40)
    category = Product.objects.latest("pk").category
    ProductFactory.create_batch(  # another category's
        5, embedding=vectors[3].tolist(), embedding_model=current_model_name()
    )
    rows = product_list(filters=ProductFilters(category=category.slug))
    by_id = dict(
        Product.objects.filter(category__slug=category.slug).values_list("pk", "embedding")
    )
    query = vectors[7] + vectors[8]

    with CaptureQueriesContext(connection) as queries:
        hits = nearest_hits(rows, query, limit=40, filtered=True, exact=True)
    sql = [query["sql"] for query in queries.captured_queries]
    exact_sql = next(statement for statement in sql if "ORDER BY" in statement)
    with (
        _hnsw_search_settings(scan=IterativeScan.OFF, exact=True),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"EXPLAIN {exact_sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert [pk for pk, _ in hits] == _half_cosine_order(by_id, query)
    assert '"catalog_product"."embedding_half" <=>' in exact_sql
    assert any("'hnsw.iterative_scan', 'off'" in statement for statement in sql)
    assert any("'enable_indexscan', 'off'" in statement for statement in sql)
    assert "product_embedding_hnsw" not in plan


def _at_most(most: int) -> ExactOrderBound:
    """A bound of ``most`` rows alone: the graph's square root bound is far above it."""
    return ExactOrderBound(most=most, graph=PRODUCT_GRAPH, scale=10**9)


@pytest.mark.django_db
def test_few_rows_holds_up_to_its_bound_and_reads_one_row_past_it_at_most() -> None:
    products_with_vectors(4)
    category = Product.objects.latest("pk").category
    rows = product_list(filters=ProductFilters(category=category.slug))

    assert FewRowsStatement.compile(rows, _at_most(4)).holds()
    assert not FewRowsStatement.compile(rows, _at_most(3)).holds()
    assert "LIMIT 4" in FewRowsStatement.compile(rows, _at_most(3)).sql


@pytest.mark.django_db
def test_few_rows_is_counted_again_only_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    products_with_vectors(4)
    category = Product.objects.latest("pk").category
    rows = product_list(filters=ProductFilters(category=category.slug))
    few = FewRowsStatement.compile(rows, _at_most(4))
    assert few.holds()
    ProductFactory.create(category=category)

    with CaptureQueriesContext(connection) as within_a_while:
        still = few.holds()
    clock = time.monotonic() + FEW_ROWS_TTL_SECONDS
    monkeypatch.setattr(time, "monotonic", lambda: clock)
    with CaptureQueriesContext(connection) as after_a_while:
        now = few.holds()

    assert still
    assert len(within_a_while) == 0
    assert not now
    assert len(after_a_while) == 1


@pytest.mark.django_db
def test_search_statements_order_exactly_only_where_the_rows_are_few() -> None:
    products_with_vectors(4)
    category = Product.objects.latest("pk").category
    filters = ProductFilters(category=category.slug)

    def statements(most: int | None) -> Any:
        return search_statements(
            lambda: product_list(filters=filters),
            rows_key=("products", filters),
            limit=10,
            filtered=True,
            exact_order=None if most is None else _at_most(most),
        )

    few, many, unbounded = statements(4), statements(3), statements(None)

    assert few.nearest_for(few.side_reads("clover")) is few.nearest_exact
    assert many.nearest_for(many.side_reads("clover")) is many.nearest
    assert unbounded.few_rows is None
    assert unbounded.nearest_for(unbounded.side_reads("clover")) is unbounded.nearest
    assert few.nearest_exact.exact
    assert not few.nearest.exact


@pytest.mark.django_db
def test_the_rows_holding_every_word_say_which_the_configured_model_has_not_embedded() -> None:
    embedded, another_models, none = (
        ProductFactory.create(
            name=f"Zanzibar Clove Honey {n}",
            embedding=[1.0] + [0.0] * (EMBEDDING_DIMENSIONS - 1) if model else None,
            embedding_model=model,
        )
        for n, model in enumerate([current_model_name(), "another-model", ""])
    )
    rows = product_list(filters=ProductFilters())

    hits = EveryWordStatement.compile(rows).hits(all_keywords("zanzibar clove"))

    assert hits.ranks.keys() == {embedded.pk, another_models.pk, none.pk}
    assert hits.unembedded == {another_models.pk, none.pk}
