"""A lever for the HNSW walk, measured and not yet built: a graph over each product's "head".

The walk at 100k products spends about two thirds of its time waiting on memory, one element's
page at a time (docs/benchmarks/journal.md, 2026-12-02: "where the walk's time goes; searches
that state a price"), so a smaller graph should walk faster. The head of an embedding is its
projection on the catalogue's top principal components (``--dimensions`` of the model's 384,
fitted on ``--fit-rows`` of the catalogue's own vectors): a graph over the heads is about half
the size at 128 dimensions. The walk finds ``--candidates`` rows by head distance, and
PostgreSQL puts them in order by the full half-precision vector, as the project's own graph
does, before the top 10 are kept.

The heads are held in a table of their own (``probe_product_head``, id and head, dropped at the
end), joined to ``catalog_product`` for the full vectors: the design proposed by
docs/benchmarks/journal.md, 2026-12-06: "a graph over each product's 'head'", since a column on
the product would make every head rewrite a non-HOT update of the product row
(and an insert into each of its graphs). Against the catalogue ``bench.search`` loaded last (it
loads one of ``--size`` products when the table holds another number), it times the exact scan,
the project's graph at its ``ef_search`` and each head graph at each ``--ef-search``, taking
turns on blocks of 20 queries as ``bench.search`` does, for ``--rounds`` rounds.

    DEBUG=1 HF_HUB_OFFLINE=1 .venv/bin/python -m bench.search_heads --markdown --wait-quiet 2

Nothing is asserted: the figures are printed and saved as JSON. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import (
    BENCH_DIR,
    bench_connect,
    bench_django_setup,
    checkpoint,
    latency_summary,
    log,
    query_texts,
    tables_print,
    wait_for_quiet,
)
from bench.search import (
    KNN_BLOCK,
    Catalogue,
    KnnMode,
    exact_mode,
    index_mode,
    load_catalog,
    measure_knn,
    recall,
)

HEAD_TABLE = "probe_product_head"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--dimensions", type=int, nargs="+", default=[128])
    parser.add_argument("--ef-search", type=int, nargs="+", default=[200, 250, 300])
    parser.add_argument("--candidates", type=int, default=100, help="rows put in order by head")
    parser.add_argument("--fit-rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="MINUTES")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown block")
    parser.add_argument("--json", type=Path, default=BENCH_DIR / "search-heads.json")
    return parser.parse_args(argv)


def components_fit(vectors: Any, *, dimensions: int, rows: int, seed: int) -> Any:
    """The top ``dimensions`` principal components of ``rows`` of ``vectors`` (a seeded random
    sample), as columns of a (384, dimensions) matrix."""
    import numpy as np

    sample = np.random.default_rng(seed).choice(len(vectors), size=rows, replace=False)
    fitted = vectors[np.sort(sample)]
    _, components = np.linalg.eigh(np.cov(fitted, rowvar=False))
    return np.ascontiguousarray(components[:, ::-1][:, :dimensions], dtype=np.float32)


def head_table_build(conn: Any, ids: Sequence[int], heads: Any, dimensions: int) -> dict:
    """(Re)create the head table and its graph (the project's m and ef_construction)."""
    from pgvector import HalfVector

    conn.execute(f"DROP TABLE IF EXISTS {HEAD_TABLE}")
    conn.execute(f"CREATE TABLE {HEAD_TABLE} (id bigint PRIMARY KEY, head halfvec({dimensions}))")
    started = time.perf_counter()
    with conn.cursor().copy(f"COPY {HEAD_TABLE} (id, head) FROM STDIN") as copy:
        for pk, head in zip(ids, heads, strict=True):
            copy.write_row((pk, HalfVector(head)))
    load_s = time.perf_counter() - started
    conn.execute("SET maintenance_work_mem = '1GB'")
    started = time.perf_counter()
    conn.execute(
        f"CREATE INDEX {HEAD_TABLE}_hnsw ON {HEAD_TABLE} USING hnsw (head halfvec_cosine_ops)"
        " WITH (m = 16, ef_construction = 256)"
    )
    build_s = time.perf_counter() - started
    conn.execute("RESET maintenance_work_mem")
    conn.execute(f"VACUUM (ANALYZE) {HEAD_TABLE}")
    checkpoint(conn)
    graph_mb = conn.execute(f"SELECT pg_relation_size('{HEAD_TABLE}_hnsw')").fetchone()[0] / 2**20
    return {"load_s": load_s, "build_s": build_s, "graph_mb": graph_mb}


def head_mode(ef_search: int, *, candidates: int, dimensions: int, components: Any) -> KnnMode:
    from pgvector import HalfVector

    def bind(vector: Any, limit: int) -> list[Any]:
        return [HalfVector(vector @ components), HalfVector(vector), limit]

    sql = (
        f"SELECT p.id FROM (SELECT id FROM {HEAD_TABLE} ORDER BY head <=> %s::halfvec({dimensions})"  # noqa: S608
        f" LIMIT {int(candidates)}) AS heads JOIN catalog_product AS p USING (id)"
        " ORDER BY p.embedding_half <=> %s::halfvec(384) LIMIT %s"
    )
    return KnnMode(index_mode(ef_search).settings_sql, sql, bind)


def measure_rounds(
    database_url: str, query_vectors: Any, modes: dict[str, KnnMode], rounds: int
) -> dict[str, dict[str, Any]]:
    """Each mode's recall@10 (against the exact scan, first round) and latency over all
    rounds, with its speed-up over the exact scan's p50."""
    seconds: dict[str, list[float]] = {name: [] for name in modes}
    ids: dict[str, list[list[int]]] = {}
    for number in range(rounds):
        log(f"round {number + 1} of {rounds}")
        runs = measure_knn(database_url, query_vectors, modes, block=KNN_BLOCK)
        for name, (found, taken) in runs.items():
            ids.setdefault(name, found)
            seconds[name].extend(taken)
    exact_p50 = latency_summary(seconds["exact"])["p50"]
    return {
        name: {
            **(summary := latency_summary(taken)),
            "recall_at_10": recall(ids[name], ids["exact"]),
            "speedup_p50": exact_p50 / summary["p50"],
        }
        for name, taken in seconds.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    database_url = bench_django_setup()
    import numpy as np
    from django.conf import settings

    from catalog.embeddings import get_embedding_backend

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    conn = bench_connect(database_url)
    catalogue = Catalogue.build(seed=args.seed, size=args.size)
    if conn.execute("SELECT count(*) FROM catalog_product").fetchone()[0] != args.size:
        load_catalog(conn, catalogue, args.size)
    vectors = np.asarray(catalogue.vectors, dtype=np.float32)
    ids = [row[0] for row in conn.execute("SELECT id FROM catalog_product ORDER BY sku")]
    backend = get_embedding_backend()
    queries = query_texts(seed=args.seed, count=args.queries)
    query_vectors = np.asarray(
        [backend.embed_query(" ".join(text.split()).lower()) for text in queries],
        dtype=np.float32,
    )
    project_ef = settings.SEARCH_HNSW_EF_SEARCH
    fit_rows = min(args.fit_rows, args.size)
    report: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "size": args.size,
        "queries": len(queries),
        "rounds": args.rounds,
        "candidates": args.candidates,
        "fit_rows": fit_rows,
        "project_ef_search": project_ef,
        "heads": [],
    }
    try:
        for dimensions in args.dimensions:
            log(f"{dimensions} dimensions: fitting on {fit_rows} rows")
            fit_started = time.perf_counter()
            components = components_fit(
                vectors, dimensions=dimensions, rows=fit_rows, seed=args.seed
            )
            fit_s = time.perf_counter() - fit_started
            heads = vectors @ components
            built = head_table_build(conn, ids, heads, dimensions)
            log(f"  head graph built in {built['build_s']:.0f} s, {built['graph_mb']:.0f} MB")
            modes = {"exact": exact_mode(), f"project ef {project_ef}": index_mode(project_ef)}
            for ef in args.ef_search:
                modes[f"head ef {ef}"] = head_mode(
                    ef, candidates=args.candidates, dimensions=dimensions, components=components
                )
            report["loadavg_before"] = wait_for_quiet(args.wait_quiet)
            measured = measure_rounds(database_url, query_vectors, modes, args.rounds)
            report["heads"].append(
                {"dimensions": dimensions, "fit_s": fit_s, **built, "modes": measured}
            )
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {HEAD_TABLE}")
    report["loadavg_after"] = os.getloadavg()
    report["seconds"] = time.perf_counter() - started
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"Head graphs at {report['size']:,} products: {report['queries']} held-out queries x "
        f"{report['rounds']} rounds, {report['candidates']} candidates put in order by the full "
        f"vector; fitted on {report['fit_rows']:,} rows"
    )
    tables_print(report_table(report), markdown=args.markdown)
    log(f"done in {report['seconds'] / 60:.1f} min; JSON in {args.json}")
    return 0


def report_table(report: dict[str, Any]) -> tuple[list[str], list[list[object]]]:
    rows: list[list[object]] = []
    for head in report["heads"]:
        # Each head graph was timed beside its own exact scan and project graph.
        for name, values in head["modes"].items():
            rows.append(
                [
                    f"{head['dimensions']}-dim heads' run: {name}",
                    f"{values['recall_at_10']:.3f}",
                    f"{values['p50']:.2f} / {values['p95']:.2f}",
                    f"{values['speedup_p50']:.1f}x",
                ]
            )
    return ["walk", "recall@10", "p50 / p95 ms", "speed-up"], rows


if __name__ == "__main__":
    raise SystemExit(main())
