"""Filtered search benchmark: the kNN walk's recall and latency when filters leave few rows.

Runs against the catalogue ``bench.search`` last loaded into ``beemanhoney_bench`` (load one
first, e.g. ``python -m bench.search --sizes 100000``). For each filter set, each held-out query
runs the selector's semantic step both ways, taking turns:

- ``strict``: pgvector's iterative scan in ``strict_order``, rows as the index yields them;
- ``relaxed``: ``relaxed_order``, rows put back in distance order (what the selector runs
  where the rows are many, or no index finds them);
- ``exact``: no walk, every row that passes ordered by the half-precision vector stored in it
  (what the selector runs for a category, tags or a price range that leave at most
  ``SEARCH_EXACT_ORDER_MAX_ROWS`` rows and √(``SEARCH_EXACT_ORDER_SCALE`` * the rows of the
  graph its walk would take)).

Recall@10 is against the exact top 10 of the filtered rows (single-precision vectors, no
index). The first page of ``product_search_rows`` (the API's work without HTTP, with the
selector's own choice of way) is timed too.

    DEBUG=1 HF_HUB_OFFLINE=1 .venv/bin/python -m bench.filtered_search --markdown

Nothing is asserted: the figures are printed and saved as JSON. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from bench import (
    BENCH_DIR,
    bench_django_setup,
    latency_summary,
    log,
    markdown_table,
    query_texts,
    text_table,
    wait_for_quiet,
)
from bench.search import recall

K = 10


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="MINUTES")
    parser.add_argument("--markdown", action="store_true")
    return parser.parse_args(argv)


def filter_sets() -> dict[str, Any]:
    """Filters a customer would set, from narrow to broad, on the loaded catalogue."""
    from catalog.models import Category, Product
    from catalog.selectors import ProductFilters

    category = Category.objects.order_by("name").values_list("slug", flat=True)[3]
    tags = Product.objects.values_list("tags", flat=True).first()
    assert tags, "the benchmark catalogue's products have tags"
    tag = tags[0]
    low, high = Decimal(5), Decimal(12)
    return {
        f"category={category}": ProductFilters(category=category),
        f"tags={tag}": ProductFilters(tags=(tag,)),
        f"category + price {low}-{high}": ProductFilters(
            category=category, min_price=low, max_price=high
        ),
        f"price {low}-{high}": ProductFilters(min_price=low, max_price=high),
        # What a query saying "under 10 pounds" searches within (catalog.query_intent).
        "price up to 9.99": ProductFilters(max_price=Decimal("9.99")),
        # Budgets between the price ceilings' graphs (catalog.models): the £20 graph, the whole.
        "price up to 14.99": ProductFilters(max_price=Decimal("14.99")),
        "price up to 24.99": ProductFilters(max_price=Decimal("24.99")),
        # A narrow range inside the £20 graph; ranges no ceiling's graph holds: a narrow one,
        # and a floor alone.
        "price 15-16": ProductFilters(min_price=Decimal(15), max_price=Decimal(16)),
        "price 25-26": ProductFilters(min_price=Decimal(25), max_price=Decimal(26)),
        "price from 30": ProductFilters(min_price=Decimal(30)),
        "in_stock": ProductFilters(in_stock=True),
    }


def measure_filters(
    name: str, filters: Any, queries: Sequence[str], vectors: Sequence[list[float]]
) -> dict[str, Any]:
    from django.conf import settings
    from pgvector.django import CosineDistance

    from catalog import search_statements, selectors
    from catalog.embeddings import current_model_name
    from catalog.query_keywords import query_keywords

    rows = selectors.product_list(filters=filters)
    compiled = {
        way: search_statements.SemanticStatement.compile(
            rows,
            limit=settings.SEARCH_CANDIDATES,
            columns=search_statements.PRODUCT_ROW_PATHS,
            filtered=way != "strict",
            exact=way == "exact",
        )
        for way in ("strict", "relaxed", "exact")
    }
    keywords = [query_keywords(text, table="catalog_product") for text in queries]

    def strict(vector: list[float], words: Any) -> list[int]:
        statement = compiled["strict"]
        params = statement.params_for(vector, words)
        scan = search_statements.IterativeScan.STRICT
        return [
            row[0] for row in search_statements._knn_rows(statement.template.sql, params, scan=scan)
        ]

    def as_the_selector_runs(way: str) -> Callable[[list[float], Any], list[int]]:
        def run(vector: list[float], words: Any) -> list[int]:
            hits = search_statements.semantic_hits(compiled[way], vector=vector, keywords=words)
            return [row[0] for row in hits]

        return run

    ways = {
        "strict": strict,
        "relaxed": as_the_selector_runs("relaxed"),
        "exact": as_the_selector_runs("exact"),
    }
    found: dict[str, list[list[int]]] = {way: [] for way in ways}
    seconds: dict[str, list[float]] = {way: [] for way in ways}
    for warm in range(3):
        for run in ways.values():
            run(vectors[warm], keywords[warm])
    for number, (vector, words) in enumerate(zip(vectors, keywords, strict=True)):
        shift = number % len(ways)
        order = list(ways)[shift:] + list(ways)[:shift]
        for way in order:
            started = time.perf_counter()
            found[way].append(ways[way](vector, words))
            seconds[way].append(time.perf_counter() - started)
    truth = [
        list(
            rows.filter(embedding_model=current_model_name())
            .order_by(CosineDistance("embedding", vector), "pk")
            .values_list("pk", flat=True)[:K]
        )
        for vector in vectors
    ]
    page_s = []
    for text in queries:
        started = time.perf_counter()
        selectors.product_search_rows(query=text, filters=filters)[:20]
        page_s.append(time.perf_counter() - started)
    statements = selectors.product_search_statements(
        filters=filters, limit=settings.SEARCH_CANDIDATES
    )
    selector_way = "exact" if statements.side_reads("").few_rows else "relaxed"
    report = {
        "rows": rows.count(),
        "first_page": latency_summary(page_s),
        "selector_way": selector_way,
    }
    for way in ways:
        report[way] = latency_summary(seconds[way]) | {"recall_at_10": recall(found[way], truth)}
    log(f"{name}: {report}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    bench_django_setup()
    from catalog.embeddings import embed_query
    from catalog.models import Product

    size = Product.objects.filter(is_active=True).count()
    if size < 1000:
        raise SystemExit(
            f"only {size} products in beemanhoney_bench: load a catalogue first "
            "(python -m bench.search --sizes 100000)"
        )
    queries = query_texts(seed=args.seed, count=args.queries)
    vectors = [embed_query(text) for text in queries]
    load_start = wait_for_quiet(args.wait_quiet)
    started = time.perf_counter()
    results = {
        name: measure_filters(name, filters, queries, vectors)
        for name, filters in filter_sets().items()
    }
    report = {
        "products": size,
        "queries": len(queries),
        "load_average": [load_start[0], os.getloadavg()[0]],
        "minutes": (time.perf_counter() - started) / 60,
        "filters": results,
    }
    (BENCH_DIR / "filtered-search-results.json").write_text(json.dumps(report, indent=2))
    headers = [
        "filter", "rows", "strict p50 / p95 ms", "strict recall@10",
        "relaxed p50 / p95 ms", "relaxed recall@10", "exact p50 / p95 ms", "exact recall@10",
        "selector's way", "first page p50 / p95 ms",
    ]  # fmt: skip
    table = [
        [
            name,
            f"{result['rows']:,}",
            f"{result['strict']['p50']:.1f} / {result['strict']['p95']:.1f}",
            f"{result['strict']['recall_at_10']:.3f}",
            f"{result['relaxed']['p50']:.1f} / {result['relaxed']['p95']:.1f}",
            f"{result['relaxed']['recall_at_10']:.3f}",
            f"{result['exact']['p50']:.1f} / {result['exact']['p95']:.1f}",
            f"{result['exact']['recall_at_10']:.3f}",
            result["selector_way"],
            f"{result['first_page']['p50']:.1f} / {result['first_page']['p95']:.1f}",
        ]
        for name, result in results.items()
    ]
    print(
        f"{size:,} active products, {len(queries)} queries, load average {report['load_average']}"
    )
    print((markdown_table if args.markdown else text_table)(headers, table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
