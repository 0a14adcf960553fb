"""Search benchmark: HNSW recall and latency, the hybrid selector and the HTTP API at scale.

For each catalogue size it loads synthetic products (embedded with the real model, vectors cached
under ``var/bench/``) into the ``beemanhoney_bench`` database, rebuilds the HNSW index, then
measures against held-out customer-style queries:

- recall@10 of the HNSW index against an exact scan, at the project's settings and other
  ``ef_search`` values, and the latency of the index vs the exact scan;
- the selector's own semantic step, keyword step, loading products by id and the whole
  ``product_search``;
- ``GET /api/products/?q=...`` against a gunicorn it starts on a free loopback port.

It also measures small catalogues to find where the index becomes twice as fast as the scan.

    DEBUG=1 HF_HUB_OFFLINE=1 .venv/bin/python -m bench.search --sizes 10000 100000

Nothing is asserted: the figures are printed (``--markdown`` for docs/BENCHMARKS.md) and saved
as JSON. See bench/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import platform
import secrets
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beemanhoney.common.ports import free_port
from bench import (
    BENCH_DIR,
    PROJECT_DIR,
    SyntheticProduct,
    bench_connect,
    bench_django_setup,
    catalog_load,
    document_vectors,
    embedding_texts,
    hnsw_index_build,
    hnsw_index_names,
    latency_summary,
    log,
    markdown_table,
    query_texts,
    synthetic_products,
    text_table,
    wait_for_quiet,
)

K = 10
WARMUP_QUERIES = 20
# The pause before each query embedding of the "after a pause" row: a request's, in effect.
EMBEDDING_PAUSE_S = 0.002
# Queries each kNN mode runs before the next takes its turn (see measure_knn).
KNN_BLOCK = 20
# The exact scan orders by the stored single-precision vectors: the ground truth. The index
# orders by the half-precision column the graphs are built over, as the selector does.
EXACT_KNN_SQL = "SELECT id FROM catalog_product ORDER BY embedding <=> %s LIMIT %s"
INDEX_KNN_SQL = (
    "SELECT id FROM catalog_product ORDER BY embedding_half <=> %s::halfvec(384) LIMIT %s"
)
TARGET_RECALL = 0.98
TARGET_SPEEDUP = 30.0
TARGET_API_P95_MS = 25.0
TARGET_SIZE = 100_000


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # 10k by default: a first 100k run embeds 100k texts (~17 min on a quiet 2-core machine).
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument(
        "--crossover-sizes",
        type=int,
        nargs="*",
        default=[100, 300, 1_000, 3_000, 10_000],
        help="catalogue sizes where only index vs exact latency is measured",
    )
    parser.add_argument("--queries", type=int, default=200, help="held-out queries per size")
    parser.add_argument("--crossover-queries", type=int, default=100)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[40, 100, 150, 200, 300])
    parser.add_argument(
        "--hnsw-variants",
        nargs="*",
        default=[],
        metavar="M:EF_CONSTRUCTION",
        help="at the largest size, also rebuild the index with these parameters and measure it",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-http", action="store_true", help="skip the gunicorn measurement")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="MINUTES",
        help="before measuring, wait up to this long for other work to stop",
    )
    parser.add_argument("--markdown", action="store_true", help="also print a markdown block")
    parser.add_argument("--json", type=Path, default=BENCH_DIR / "search-results.json")
    return parser.parse_args(argv)


# --- raw SQL timing ---------------------------------------------------------------------------


def _vector_and_limit(vector: Any, limit: int) -> list[Any]:
    return [vector, limit]


@dataclass(frozen=True)
class KnnMode:
    settings_sql: tuple[str, ...]
    sql: str
    # The statement's parameters for a query vector and a limit.
    bind: Callable[[Any, int], list[Any]] = _vector_and_limit


def measure_knn(
    database_url: str,
    vectors: Any,
    modes: dict[str, KnnMode],
    *,
    limit: int = K,
    block: int = 1,
) -> dict[str, tuple[list[list[int]], list[float]]]:
    """Run every query vector through every mode; return each mode's ids and seconds.

    Each mode has its own connection with its settings. The modes take turns on each ``block``
    of queries, in rotating order, so load that drifts on a shared machine hits them alike and
    their ratio holds even when the absolute figures move. With ``block`` 1 every index query
    follows an exact scan, which has just streamed the whole table through the CPU caches and
    evicted the graph's hot pages: a setting no search service runs in. Blocks of a few dozen
    queries keep each mode's caches as its own traffic would, and still take turns often.
    """
    connections: dict[str, Any] = {}
    try:
        for name, mode in modes.items():
            conn = connections[name] = bench_connect(database_url)
            for statement in mode.settings_sql:
                conn.execute(statement)
            for vector in vectors[:WARMUP_QUERIES]:
                conn.execute(mode.sql, mode.bind(vector, limit)).fetchall()
        names = list(modes)
        ids: dict[str, list[list[int]]] = {name: [] for name in names}
        seconds: dict[str, list[float]] = {name: [] for name in names}
        for number, first in enumerate(range(0, len(vectors), block)):
            turn = number % len(names)
            for name in names[turn:] + names[:turn]:
                for vector in vectors[first : first + block]:
                    params = modes[name].bind(vector, limit)
                    started = time.perf_counter()
                    rows = connections[name].execute(modes[name].sql, params).fetchall()
                    seconds[name].append(time.perf_counter() - started)
                    ids[name].append([row[0] for row in rows])
    finally:
        for conn in connections.values():
            conn.close()
    return {name: (ids[name], seconds[name]) for name in names}


def exact_mode() -> KnnMode:
    return KnnMode(("SET enable_indexscan = off",), EXACT_KNN_SQL)


def index_mode(ef_search: int) -> KnnMode:
    # As catalog.search_statements._hnsw_search_settings for an unfiltered search (the queries here
    # filter nothing out, so no iterative scan), plus forcing the index so small tables
    # measure it too (the planner picks it by itself from ~10k rows; see "planner uses index").
    settings_sql = (
        f"SET hnsw.ef_search = {int(ef_search)}",
        "SET hnsw.iterative_scan = off",
        "SET enable_seqscan = off",
    )
    return KnnMode(settings_sql, INDEX_KNN_SQL)


def plan_nodes(conn: Any, vector: Any, mode: KnnMode) -> str:
    for statement in mode.settings_sql:
        conn.execute(statement)
    plan = conn.execute("EXPLAIN (FORMAT JSON) " + mode.sql, [vector, K]).fetchone()[0]
    conn.execute("RESET ALL")
    nodes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        nodes.append(node["Node Type"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return " > ".join(nodes)


def recall(found: Sequence[Sequence[int]], truth: Sequence[Sequence[int]], k: int = K) -> float:
    hits = sum(len(set(f[:k]) & set(t[:k])) for f, t in zip(found, truth, strict=True))
    return hits / (k * len(truth))


def tie_aware_recall(
    found: Sequence[Sequence[int]], distances: Any, row_of: dict[int, int], k: int = K
) -> float:
    """Recall that also counts a hit whose distance equals the k-th true distance (ties)."""
    import numpy as np

    hits = 0
    for ids, row in zip(found, distances, strict=True):
        kth = np.partition(row, k - 1)[k - 1]
        hits += min(k, sum(1 for pk in ids[:k] if row[row_of[pk]] <= kth + 1e-6))
    return hits / (k * len(found))


# --- the selector -----------------------------------------------------------------------------


def _clear_query_cache() -> None:
    # Each size must pay for query embeddings as a first search would; the cache is private.
    from catalog import embeddings

    embeddings._query_cache.clear()


def _time_each(
    items: Sequence[Any], call: Callable[[Any], Any], *, pause_s: float = 0.0
) -> tuple[list[Any], list[float]]:
    """``call(item)`` for each item, and the seconds each took; each after a sleep of
    ``pause_s`` (not timed)."""
    results, seconds = [], []
    for item in items:
        if pause_s:
            time.sleep(pause_s)
        started = time.perf_counter()
        results.append(call(item))
        seconds.append(time.perf_counter() - started)
    return results, seconds


def measure_selector(
    queries: Sequence[str], warmups: Sequence[str], vectors: Any, truth: Sequence[Sequence[int]]
) -> dict[str, Any]:
    from django.conf import settings

    from catalog import search_statements, selectors
    from catalog.query_keywords import QueryKeywords, query_keywords

    filters = selectors.ProductFilters()
    rows = selectors.product_list(filters=filters)
    candidates = settings.SEARCH_CANDIDATES

    statements = selectors.product_search_statements(filters=filters, limit=candidates)

    def semantic(query: tuple[QueryKeywords, list[float]]) -> list[tuple[int, float | None]]:
        keywords, vector = query
        hits = search_statements.semantic_hits(statements.nearest, vector=vector, keywords=keywords)
        return [(row[0], row[1]) for row in hits]

    def keyword(query: tuple[str, list[tuple[int, float | None]]]) -> list[int]:
        # The keyword half's reads (its words, the rows holding all of them: they overlap with
        # the query embedding in the selector, so this is their cost, not their latency),
        # merged with the keyword ranks the semantic statement brought along.
        text, nearest = query
        ranks = statements.side_reads(text).every_word.ranks | dict(nearest)
        return selectors.keyword_ranking(ranks, limit=candidates)

    def search(text: str) -> list[Any]:
        return selectors.product_search(query=text, filters=filters)

    def first_page(text: str) -> list[Any]:
        # What GET /api/products/?q= does: rank, then load only the page's 20 rows.
        return selectors.product_search_rows(query=text, filters=filters)[:20]

    vector_lists = [vector.tolist() for vector in vectors]
    keywords = [query_keywords(text, table=statements.table) for text in queries]
    with search_statements._hnsw_search_settings(scan=search_statements.IterativeScan.OFF):
        plan = search_statements.semantic_queryset(
            rows, vector=vector_lists[0], limit=candidates, keywords=keywords[0]
        ).explain()
    for text in warmups:
        search(text)
    nearest, semantic_s = _time_each(list(zip(keywords, vector_lists, strict=True)), semantic)
    keyword_ids, keyword_s = _time_each(list(zip(queries, nearest, strict=True)), keyword)
    semantic_ids = [[pk for pk, _ in hits] for hits in nearest]
    fused = [
        [hit.pk for hit in selectors._fuse(s, k, candidates)]
        for s, k in zip(semantic_ids, keyword_ids, strict=True)
    ]
    # What loads the rows the kNN statement did not bring (here all 100 of each ranking).
    _, by_id_s = _time_each(fused, search_statements.ProductsByIdStatement.compile(rows).load)
    _clear_query_cache()
    hits, search_s = _time_each(queries, search)
    _, search_cached_s = _time_each(queries, search)
    _clear_query_cache()
    _, page_s = _time_each(queries, first_page)
    _, page_cached_s = _time_each(queries, first_page)
    return {
        "planner_uses_index": "product_embedding_hnsw" in plan,
        "semantic_plan": " ".join(plan.split())[:300],
        "semantic": latency_summary(semantic_s),
        "semantic_recall_at_10": recall(semantic_ids, truth),
        "semantic_recall_at_100": recall(semantic_ids, truth, k=candidates),
        "keyword": latency_summary(keyword_s),
        "keyword_matches_mean": sum(len(ids) for ids in keyword_ids) / len(keyword_ids),
        "products_by_id": latency_summary(by_id_s),
        "product_search": latency_summary(search_s),
        "product_search_cached_embedding": latency_summary(search_cached_s),
        "first_page": latency_summary(page_s),
        "first_page_cached_embedding": latency_summary(page_cached_s),
        "hits_mean": sum(len(h) for h in hits) / len(hits),
    }


# --- what would make the keyword step cheaper ------------------------------------------------

KEYWORD_SQL = (
    "SELECT id FROM catalog_product WHERE is_active AND search_vector @@ %(q)s::tsquery "
    "ORDER BY {rank}(search_vector, %(q)s::tsquery) DESC, id LIMIT %(limit)s"
)
COMMON_LEXEME_SHARE = 0.10


KEYWORD_IN_CANDIDATES_SQL = (
    "SELECT id FROM catalog_product WHERE id = ANY(%(ids)s) AND search_vector @@ %(q)s::tsquery "
    "ORDER BY ts_rank_cd(search_vector, %(q)s::tsquery) DESC, id LIMIT %(limit)s"
)


def measure_keyword_options(
    conn: Any, queries: Sequence[str], query_vectors: Any, size: int
) -> dict[str, Any]:
    """Keyword SQL over the whole table against cheaper variants, on the same queries.

    The first cut of the selector ORed every word and ranked every matching row with
    ``ts_rank_cd``; with words like "honey" that match most of a honey shop's catalogue, that
    ranks most of the catalogue. The variants: ``ts_rank``; dropping words found in more than
    10% of products (from ``ts_stat``, which a real implementation would cache); and ranking
    only the semantic candidates plus the products holding every rarer word (close to what
    the hybrid search now does, with every word).
    """
    from django.conf import settings

    from catalog.query_keywords import query_words

    started = time.perf_counter()
    common = {
        row[0]
        for row in conn.execute(
            "SELECT word FROM ts_stat('SELECT search_vector FROM catalog_product') WHERE ndoc > %s",
            [int(size * COMMON_LEXEME_SHARE)],
        )
    }
    ts_stat_s = time.perf_counter() - started
    full, pruned, rare_all = [], [], []
    for text in queries:
        words = " ".join(query_words(text))
        lexemes = conn.execute(
            "SELECT tsvector_to_array(to_tsvector('english', %s))", [words]
        ).fetchone()[0]
        rare = [f"'{lexeme}'" for lexeme in lexemes if lexeme not in common]
        full.append(" | ".join(f"'{lexeme}'" for lexeme in lexemes))
        pruned.append(" | ".join(rare))
        rare_all.append(" & ".join(rare))
    # The candidates the selector's semantic step finds anyway (not timed here).
    mode = index_mode(settings.SEARCH_HNSW_EF_SEARCH)
    for statement in mode.settings_sql:
        conn.execute(statement)
    candidates = [
        [row[0] for row in conn.execute(mode.sql, [vector, settings.SEARCH_CANDIDATES])]
        for vector in query_vectors
    ]
    conn.execute("RESET ALL")
    limit = settings.SEARCH_CANDIDATES

    def ranked(rank: str, tsqueries: list[str]) -> Callable[[int], list[int]]:
        sql = KEYWORD_SQL.format(rank=rank)

        def run(number: int) -> list[int]:
            q = tsqueries[number]
            return [r[0] for r in conn.execute(sql, {"q": q, "limit": limit})] if q else []

        return run

    def in_candidates(number: int) -> list[int]:
        params = {"ids": candidates[number], "q": full[number], "limit": limit}
        ids = [row[0] for row in conn.execute(KEYWORD_IN_CANDIDATES_SQL, params)]
        if rare_all[number]:
            ids += ranked("ts_rank_cd", rare_all)(number)
        return list(dict.fromkeys(ids))[:limit]

    options: dict[str, Callable[[int], list[int]]] = {
        "whole table: ts_rank_cd, any word (first cut)": ranked("ts_rank_cd", full),
        "ts_rank, any word": ranked("ts_rank", full),
        f"ts_rank_cd, words in >{COMMON_LEXEME_SHARE:.0%} of products dropped": ranked(
            "ts_rank_cd", pruned
        ),
        "ts_rank_cd of the semantic candidates + rows with every rarer word": in_candidates,
    }
    results: dict[str, Any] = {"common_lexemes": sorted(common), "ts_stat_s": ts_stat_s}
    baseline: list[list[int]] = []
    for label, run in options.items():
        ids, seconds = _time_each(range(len(queries)), run)
        baseline = baseline or ids
        results[label] = {
            **latency_summary(seconds),
            "top10_overlap_with_whole_table": recall(ids, baseline),
            "no_keyword_rows": sum(1 for found in ids if not found),
        }
    return results


def measure_hnsw_variant(
    conn: Any, database_url: str, variant: str, query_vectors: Any, ef_values: Sequence[int]
) -> dict[str, Any]:
    m, ef_construction = (int(part) for part in variant.split(":"))
    log(f"HNSW m={m}, ef_construction={ef_construction}: building")
    build_s = hnsw_index_build(conn, m=m, ef_construction=ef_construction)
    from catalog.models import PRODUCT_GRAPH

    index_mb = conn.execute(f"SELECT pg_relation_size('{PRODUCT_GRAPH}')").fetchone()[0] / 2**20
    log(f"  built in {build_s:.0f} s; exact scan and ef_search {list(ef_values)}")
    result = {"m": m, "ef_construction": ef_construction, "build_s": build_s, "index_mb": index_mb}
    return result | ef_sweep(database_url, query_vectors, ef_values)


def ef_sweep(
    database_url: str, query_vectors: Any, ef_values: Sequence[int], *, block: int = KNN_BLOCK
) -> dict[str, Any]:
    """The exact scan and the index at each ``ef_search``, taking turns on blocks of queries."""
    modes = {"exact": exact_mode(), **{str(ef): index_mode(ef) for ef in ef_values}}
    runs = measure_knn(database_url, query_vectors, modes, block=block)
    exact_ids, exact_s = runs.pop("exact")
    exact = latency_summary(exact_s)
    sweep = {}
    for ef, (ids, seconds) in runs.items():
        latency = latency_summary(seconds)
        sweep[ef] = {
            **latency,
            "recall_at_10": recall(ids, exact_ids),
            "speedup_p50": exact["p50"] / latency["p50"],
            "ids": ids,
        }
    return {"exact": exact, "exact_ids": exact_ids, "ef_sweep": sweep}


# --- the HTTP API -----------------------------------------------------------------------------


def gunicorn_start(
    database_url: str,
    log_path: Path,
    project_dir: Path = PROJECT_DIR,
    python: str = sys.executable,
) -> tuple[subprocess.Popen[bytes], int]:
    """A gunicorn serving the checkout at ``project_dir`` on the interpreter ``python``, healthy;
    its port."""
    from django.conf import settings

    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "ALLOWED_HOSTS": "127.0.0.1",
        # As in production: no query log, no debug pages; plain HTTP on loopback.
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SECURE_SSL_REDIRECT": "0",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "LOG_LEVEL": "WARNING",
        # 440 reads from one address would trip the 600/min read throttle; it still runs (its
        # cache round trip is part of every request), only its limit is lifted.
        "THROTTLE_READ": "1000000/min",
        # Checkouts share one exported ONNX graph (its file name pins what it was made from).
        "EMBEDDING_CACHE_DIR": str(settings.EMBEDDING_CACHE_DIR),
    }
    command = [
        python, "-m", "gunicorn", "beemanhoney.wsgi:application",
        "-k", "gthread", "--threads", "4", "-w", "1",
        "--bind", f"127.0.0.1:{port}", "--error-logfile", str(log_path), "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=project_dir, env=env)
    deadline = time.monotonic() + 90
    while True:
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            status, _ = _http_get(probe, "/healthz")
            probe.close()
            if status == 200:
                return process, port
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            gunicorn_stop(process)
            raise SystemExit(f"gunicorn did not become healthy: see {log_path}")
        time.sleep(0.2)


def gunicorn_stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _http_get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path, headers={"Accept": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def measure_http(
    database_url: str, queries: Sequence[str], warmups: Sequence[str], size: int
) -> dict[str, Any]:
    process, port = gunicorn_start(database_url, BENCH_DIR / f"gunicorn-{size}.log")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        reconnects = 0

        def get(text: str) -> int:
            nonlocal conn, reconnects
            path = "/api/products/?" + urllib.parse.urlencode({"q": text})
            try:
                status, body = _http_get(conn, path)
            except (http.client.RemoteDisconnected, ConnectionError):
                reconnects += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                status, body = _http_get(conn, path)
            if status != 200:
                raise SystemExit(f"GET {path} answered {status}: {body[:300]!r}")
            return int(json.loads(body)["count"])

        for text in warmups:
            get(text)
        counts, cold_s = _time_each(queries, get)
        _, cached_s = _time_each(queries, get)
        conn.close()
    finally:
        gunicorn_stop(process)
    states_price = [_states_price(text) for text in queries]
    return {
        "api": latency_summary(cold_s),
        "api_cached_embedding": latency_summary(cached_s),
        # A stated price filters the walk ("under 10 pounds": ~15% of the rows pass, so it reads
        # ~7x the candidates): such queries are the slowest few, and set much of the p95.
        "api_stating_no_price": latency_summary(
            [s for s, price in zip(cold_s, states_price, strict=True) if not price]
        ),
        "api_stating_a_price": latency_summary(
            [s for s, price in zip(cold_s, states_price, strict=True) if price]
        ),
        "queries_stating_a_price": sum(states_price),
        "results_mean": sum(counts) / len(counts),
        "reconnects": reconnects,
    }


def _states_price(text: str) -> bool:
    from catalog.query_intent import query_intent_read

    intent = query_intent_read(text)
    return intent.min_price is not None or intent.max_price is not None


# --- one catalogue size -----------------------------------------------------------------------


@dataclass(frozen=True)
class Catalogue:
    """The largest catalogue of the run; every smaller size is a prefix of it."""

    products: list[SyntheticProduct]
    hashes: list[str]
    vectors: Any

    @classmethod
    def build(cls, *, seed: int, size: int) -> Catalogue:
        from catalog.embeddings import text_hash

        products = synthetic_products(seed=seed, count=size)
        texts = embedding_texts(products)
        vectors = document_vectors(texts, seed=seed)
        return cls(products=products, hashes=[text_hash(t) for t in texts], vectors=vectors)


def load_catalog(conn: Any, catalogue: Catalogue, size: int) -> tuple[dict[str, Any], Any, dict]:
    """Load the first ``size`` products, rebuild the index; return facts, vectors, id -> row."""
    from catalog.embeddings import current_model_name

    vectors = catalogue.vectors[:size]
    log(f"{size}: loading")
    load_s = catalog_load(
        conn,
        catalogue.products[:size],
        vectors,
        model_name=current_model_name(),
        hashes=catalogue.hashes[:size],
    )
    log(f"{size}: loaded in {load_s:.1f} s; building the HNSW indexes")
    build_s = hnsw_index_build(conn)
    log(f"{size}: indexes built in {build_s:.1f} s")
    ids = [row[0] for row in conn.execute("SELECT id FROM catalog_product ORDER BY sku")]
    table_bytes, *index_bytes = conn.execute(
        "SELECT pg_total_relation_size('catalog_product'), "
        + ", ".join(f"pg_relation_size('{name}')" for name in hnsw_index_names())
    ).fetchone()
    facts = {
        "size": size,
        "load_s": load_s,
        # Since Dec 5 the price ceilings' graphs too (before: the whole catalogue's alone).
        "index_build_s": build_s,
        "table_total_mb": table_bytes / 2**20,
        "hnsw_index_mb": index_bytes[0] / 2**20,
        "price_ceiling_graphs_mb": sum(index_bytes[1:]) / 2**20,
    }
    return facts, vectors, {pk: row for row, pk in enumerate(ids)}


def measure_size(
    conn: Any,
    database_url: str,
    catalogue: Catalogue,
    size: int,
    args: argparse.Namespace,
    queries: Sequence[str],
    warmups: Sequence[str],
    query_vectors: Any,
) -> dict[str, Any]:
    import numpy as np
    from django.conf import settings

    result, vectors, row_of = load_catalog(conn, catalogue, size)
    project_ef = settings.SEARCH_HNSW_EF_SEARCH
    ef_values = sorted({*args.ef_search, project_ef})
    log(f"{size}: exact scan (ground truth) and the index at ef_search {ef_values}")
    measured = ef_sweep(database_url, query_vectors, ef_values)
    exact_ids = measured.pop("exact_ids")
    distances = 1.0 - query_vectors @ vectors.T
    for ef, values in measured["ef_sweep"].items():
        values["recall_at_10_tie_aware"] = tie_aware_recall(values.pop("ids"), distances, row_of)
        log(f"{size}: ef_search={ef}: recall@10 {values['recall_at_10']:.3f}")
    project = measured["ef_sweep"][str(project_ef)]
    result |= measured | {
        "project_ef_search": project_ef,
        "index": {key: project[key] for key in ("p50", "p95", "mean")},
        "speedup_p50": project["speedup_p50"],
        "recall_at_10": project["recall_at_10"],
        "exact_plan": plan_nodes(conn, query_vectors[0], exact_mode()),
        "index_plan": plan_nodes(conn, query_vectors[0], index_mode(project_ef)),
    }
    interleaved = ef_sweep(database_url, query_vectors, [project_ef], block=1)
    result["speedup_p50_every_query_after_an_exact_scan"] = interleaved["ef_sweep"][
        str(project_ef)
    ]["speedup_p50"]
    truth = measure_knn(
        database_url, query_vectors, {"exact": exact_mode()}, limit=settings.SEARCH_CANDIDATES
    )["exact"][0]
    numpy_top = np.argsort(distances, axis=1)[:, :K]
    pk_of = {row: pk for pk, row in row_of.items()}
    numpy_ids = [[pk_of[row] for row in top] for top in numpy_top]
    result["exact_vs_numpy_agreement"] = recall(numpy_ids, exact_ids)
    log(f"{size}: selector")
    result["selector"] = measure_selector(queries, warmups, query_vectors, truth)
    log(f"{size}: keyword SQL options")
    result["keyword_options"] = measure_keyword_options(conn, queries, query_vectors, size)
    if not args.no_http:
        log(f"{size}: HTTP API via gunicorn")
        result["http"] = measure_http(database_url, queries, warmups, size)
    if size == max(args.sizes):
        variants = [
            measure_hnsw_variant(conn, database_url, variant, query_vectors, ef_values)
            for variant in args.hnsw_variants
        ]
        if variants:
            # Leave the catalogue as the project indexes it, for bench.search_ab and the like.
            log("rebuilding the project's HNSW index")
            hnsw_index_build(conn, whole_only=True)
        for variant in variants:
            variant.pop("exact_ids")
            for values in variant["ef_sweep"].values():
                values.pop("ids")
        result["hnsw_variants"] = variants
    return result


def measure_crossover(
    conn: Any, database_url: str, catalogue: Catalogue, size: int, vectors: Any
) -> dict:
    from django.conf import settings

    facts, _, _ = load_catalog(conn, catalogue, size)
    ef = settings.SEARCH_HNSW_EF_SEARCH
    measured = ef_sweep(database_url, vectors, [ef])
    index = measured["ef_sweep"][str(ef)]
    return {
        **facts,
        "exact": measured["exact"],
        "index": {key: index[key] for key in ("p50", "p95", "mean")},
        "speedup_p50": index["speedup_p50"],
        "recall_at_10": index["recall_at_10"],
        "planner_plan": plan_nodes(conn, vectors[0], KnnMode((), INDEX_KNN_SQL)),
    }


def crossover_size(points: Sequence[tuple[int, float]], ratio: float = 2.0) -> float | None:
    """The size where the speed-up first reaches ``ratio``, interpolated on log(size)."""
    points = sorted(points)
    for (n0, r0), (n1, r1) in itertools.pairwise(points):
        if r0 < ratio <= r1:
            t = (ratio - r0) / (r1 - r0)
            return math.exp(math.log(n0) + t * (math.log(n1) - math.log(n0)))
    if points and points[0][1] >= ratio:
        return float(points[0][0])
    return None


# --- reporting --------------------------------------------------------------------------------


def _ms(summary: dict[str, float]) -> str:
    return f"{summary['p50']:.1f} / {summary['p95']:.1f}"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report_tables(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[object]]]]:
    tables = []
    sizes = report["sizes"]
    headers = ["measure (p50 / p95 ms)"] + [f"{r['size']:,} products" for r in sizes]

    def row(label: str, get: Callable[[dict[str, Any]], object]) -> list[object]:
        values: list[object] = [label]
        for r in sizes:
            try:
                values.append(get(r))
            except KeyError:
                values.append("-")
        return values

    main_rows = [
        row("load (COPY), s", lambda r: f"{r['load_s']:.1f}"),
        row("HNSW index builds (price ceilings' too), s", lambda r: f"{r['index_build_s']:.1f}"),
        row("HNSW index size, MB", lambda r: f"{r['hnsw_index_mb']:.0f}"),
        row("price ceilings' graphs, MB", lambda r: f"{r['price_ceiling_graphs_mb']:.0f}"),
        row("exact scan (top-10)", lambda r: _ms(r["exact"])),
        row(
            f"HNSW (top-10, ef_search={report['project_ef_search']})",
            lambda r: _ms(r["index"]),
        ),
        row("speed-up exact/HNSW (p50)", lambda r: f"{r['speedup_p50']:.1f}x"),
        row(
            "  the same, every index query right after an exact scan",
            lambda r: f"{r['speedup_p50_every_query_after_an_exact_scan']:.1f}x",
        ),
        row("recall@10 (project settings)", lambda r: f"{r['recall_at_10']:.3f}"),
    ]

    def ef_cell(ef: str) -> Callable[[dict[str, Any]], object]:
        return lambda r: (
            f"{r['ef_sweep'][ef]['recall_at_10']:.3f}, {_ms(r['ef_sweep'][ef])}, "
            f"{r['ef_sweep'][ef]['speedup_p50']:.1f}x"
        )

    for ef in report["ef_values"]:
        main_rows.append(row(f"ef_search={ef}: recall@10, p50/p95, speed-up", ef_cell(ef)))
    main_rows += [
        row("query embedding alone", lambda r: _ms(report["query_embedding"])),
        row(
            f"  each after a {EMBEDDING_PAUSE_S * 1000:.0f} ms pause, as a request comes",
            lambda r: _ms(report["query_embedding_after_pause"]),
        ),
        row("selector semantic step (LIMIT 100)", lambda r: _ms(r["selector"]["semantic"])),
        row(
            "  its recall@10 / recall@100",
            lambda r: (
                f"{r['selector']['semantic_recall_at_10']:.3f} / "
                f"{r['selector']['semantic_recall_at_100']:.3f}"
            ),
        ),
        row("  planner uses the HNSW index", lambda r: r["selector"]["planner_uses_index"]),
        row("selector keyword step (LIMIT 100)", lambda r: _ms(r["selector"]["keyword"])),
        row(
            "  ids it returns (mean)",
            lambda r: f"{r['selector']['keyword_matches_mean']:.0f} (capped at 100)",
        ),
        row("products by id, 100 fused ids", lambda r: _ms(r["selector"]["products_by_id"])),
        row("product_search (new query)", lambda r: _ms(r["selector"]["product_search"])),
        row(
            "product_search (embedding cached)",
            lambda r: _ms(r["selector"]["product_search_cached_embedding"]),
        ),
        row(
            "product_search_rows, first page of 20 (new query)",
            lambda r: _ms(r["selector"]["first_page"]),
        ),
        row(
            "product_search_rows, first page of 20 (embedding cached)",
            lambda r: _ms(r["selector"]["first_page_cached_embedding"]),
        ),
        row("GET /api/products/?q= (new query)", lambda r: _ms(r["http"]["api"])),
        row(
            "  of which queries stating no price",
            lambda r: _ms(r["http"]["api_stating_no_price"]),
        ),
        row(
            "  of which queries stating a price (filtered)",
            lambda r: (
                f"{_ms(r['http']['api_stating_a_price'])} "
                f"({r['http']['queries_stating_a_price']} queries)"
            ),
        ),
        row(
            "GET /api/products/?q= (embedding cached)",
            lambda r: _ms(r["http"]["api_cached_embedding"]),
        ),
    ]
    tables.append(("Search at scale", headers, main_rows))

    cross = report["crossover"]
    cross_rows: list[list[object]] = [
        [f"{c['size']:,}", _ms(c["exact"]), _ms(c["index"]), f"{c['speedup_p50']:.2f}x"]
        for c in cross["points"]
    ]
    where = cross["size_at_2x"]
    reached = f"~{where:,.0f} products" if where else "not reached in the sizes measured"
    cross_rows.append(["2x reached at", reached, "", ""])
    tables.append(
        (
            "Where HNSW beats the exact scan by 2x",
            ["products", "exact p50 / p95 ms", "HNSW p50 / p95 ms", "speed-up (p50)"],
            cross_rows,
        )
    )

    largest = sizes[-1] if sizes else None
    if largest and "keyword_options" in largest:
        options = largest["keyword_options"]
        keyword_rows: list[list[object]] = [
            [
                label,
                _ms(values),
                f"{values['top10_overlap_with_whole_table']:.2f}",
                values["no_keyword_rows"],
            ]
            for label, values in options.items()
            if isinstance(values, dict)
        ]
        tables.append(
            (
                f"Keyword SQL options at {largest['size']:,} products "
                f"({len(options['common_lexemes'])} words in >10% of products, e.g. "
                f"{', '.join(options['common_lexemes'][:8])}; "
                f"ts_stat {options['ts_stat_s']:.1f} s)",
                ["keyword statement", "p50 / p95 ms", "top-10 overlap with whole table", "no rows"],
                keyword_rows,
            )
        )
    if largest and largest.get("hnsw_variants"):
        variant_rows: list[list[object]] = [
            [
                f"m={report['hnsw']['m']}, ef_construction={report['hnsw']['ef_construction']} "
                "(migration)",
                f"{largest['index_build_s']:.0f}",
                f"{largest['hnsw_index_mb']:.0f}",
                *[
                    f"{v['recall_at_10']:.3f} @ {v['p50']:.1f} ms ({v['speedup_p50']:.0f}x)"
                    for v in largest["ef_sweep"].values()
                ],
            ]
        ]
        for variant in largest["hnsw_variants"]:
            variant_rows.append(
                [
                    f"m={variant['m']}, ef_construction={variant['ef_construction']}",
                    f"{variant['build_s']:.0f}",
                    f"{variant['index_mb']:.0f}",
                    *[
                        f"{v['recall_at_10']:.3f} @ {v['p50']:.1f} ms ({v['speedup_p50']:.0f}x)"
                        for v in variant["ef_sweep"].values()
                    ],
                ]
            )
        tables.append(
            (
                f"HNSW build parameters at {largest['size']:,} products: recall@10 @ p50 "
                "(speed-up over exact)",
                ["index", "build s", "MB", *[f"ef_search={ef}" for ef in largest["ef_sweep"]]],
                variant_rows,
            )
        )

    target_rows: list[list[object]] = []
    for r in sizes:
        if r["size"] != TARGET_SIZE:
            continue
        recall_ok = r["recall_at_10"] >= TARGET_RECALL
        speed_ok = r["speedup_p50"] >= TARGET_SPEEDUP
        target_rows += [
            [
                f"recall@10 >= {TARGET_RECALL} at {TARGET_SIZE:,}",
                f"{r['recall_at_10']:.3f}",
                _met(recall_ok),
            ],
            [
                f"HNSW >= {TARGET_SPEEDUP:.0f}x faster than exact at {TARGET_SIZE:,}",
                f"{r['speedup_p50']:.1f}x",
                _met(speed_ok),
            ],
        ]
        points = [
            (f"m={report['hnsw']['m']}, ef_construction={report['hnsw']['ef_construction']}", ef, v)
            for ef, v in r["ef_sweep"].items()
        ] + [
            (f"m={var['m']}, ef_construction={var['ef_construction']}", ef, v)
            for var in r.get("hnsw_variants", [])
            for ef, v in var["ef_sweep"].items()
        ]
        both = [
            f"{index}, ef_search={ef} ({v['recall_at_10']:.3f}, {v['speedup_p50']:.0f}x)"
            for index, ef, v in points
            if v["recall_at_10"] >= TARGET_RECALL and v["speedup_p50"] >= TARGET_SPEEDUP
        ]
        target_rows.append(
            [
                f"both at once, any setting measured at {TARGET_SIZE:,}",
                "; ".join(both) or "none of the settings measured",
                _met(bool(both)),
            ]
        )
        if "http" in r:
            p95 = r["http"]["api"]["p95"]
            target_rows.append(
                [
                    f"API p95 <= {TARGET_API_P95_MS:.0f} ms at {TARGET_SIZE:,}",
                    f"{p95:.1f} ms",
                    _met(p95 <= TARGET_API_P95_MS),
                ]
            )
    if target_rows:
        tables.append(("Targets", ["target", "measured", "verdict"], target_rows))
    return tables


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    database_url = bench_django_setup()
    import numpy as np
    from django.conf import settings

    from catalog.embeddings import get_embedding_backend
    from catalog.models import PRODUCT_GRAPH, Product

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    catalogue = Catalogue.build(seed=args.seed, size=max([*args.sizes, *args.crossover_sizes]))
    load_before = wait_for_quiet(args.wait_quiet)
    queries = query_texts(seed=args.seed, count=args.queries)
    warmups = [
        text
        for text in query_texts(seed=args.seed, count=WARMUP_QUERIES * 2, offset=1_000_000)
        if text not in queries
    ][:WARMUP_QUERIES]
    backend = get_embedding_backend()
    for text in warmups:
        backend.embed_query(text)
    # Normalised as catalog.embeddings.embed_query does; timed: the query-embedding cost alone.
    normalised = [" ".join(text.split()).lower() for text in queries]
    embedded, embed_s = _time_each(normalised, backend.embed_query)
    # A request comes after a pause, by when other work has pushed the model's weights out of
    # the CPU's cache: back to back reads ~3.5 ms where a request paid ~8 on one thread
    # (docs/benchmarks/journal.md, "2026-12-07, 14:24: two threads").
    _, embed_after_pause_s = _time_each(normalised, backend.embed_query, pause_s=EMBEDDING_PAUSE_S)
    query_vectors = np.asarray(embedded, dtype=np.float32)

    conn = bench_connect(database_url)
    hnsw = next(index for index in Product._meta.indexes if index.name == PRODUCT_GRAPH)
    report: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": platform.python_version(),
        "postgres": conn.execute("SHOW server_version").fetchone()[0],
        "pgvector": conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()[0],
        "project_ef_search": settings.SEARCH_HNSW_EF_SEARCH,
        "hnsw": {"m": hnsw.m, "ef_construction": hnsw.ef_construction},
        "search_candidates": settings.SEARCH_CANDIDATES,
        "ef_values": [str(ef) for ef in sorted({*args.ef_search, settings.SEARCH_HNSW_EF_SEARCH})],
        "queries": len(queries),
        "query_examples": queries[:5],
        "query_embedding": latency_summary(embed_s),
        "query_embedding_after_pause": latency_summary(embed_after_pause_s),
        "loadavg_before": load_before,
        "sizes": [],
    }
    crossover_points = []
    for size in sorted(set(args.crossover_sizes) - set(args.sizes)):
        log(f"crossover: {size} products")
        crossover_points.append(
            measure_crossover(
                conn, database_url, catalogue, size, query_vectors[: args.crossover_queries]
            )
        )
    for size in sorted(args.sizes):
        log(f"size {size}")
        result = measure_size(
            conn, database_url, catalogue, size, args, queries, warmups, query_vectors
        )
        report["sizes"].append(result)
        if size in args.crossover_sizes:
            crossover_points.append(result)
    conn.close()
    crossover_points.sort(key=lambda c: c["size"])
    report["crossover"] = {
        "points": crossover_points,
        "size_at_2x": crossover_size([(c["size"], c["speedup_p50"]) for c in crossover_points]),
    }
    report["loadavg_after"] = os.getloadavg()
    report["seconds"] = time.perf_counter() - started
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str))

    tables = report_tables(report)
    print(
        f"Search benchmark: {len(queries)} held-out queries, PostgreSQL {report['postgres']}, "
        f"pgvector {report['pgvector']}, {report['seconds'] / 60:.1f} min, load average "
        f"{load_before[0]:.1f} -> {report['loadavg_after'][0]:.1f}"
    )
    for title, headers, rows in tables:
        print(f"\n{title}\n{text_table(headers, rows)}")
    if args.markdown:
        print("\n```markdown")
        for title, headers, rows in tables:
            print(f"**{title}**\n\n{markdown_table(headers, rows)}\n")
        print("```")
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
