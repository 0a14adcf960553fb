"""Backfill benchmark: ``embeddings_refresh`` throughput against the raw model on the same texts.

It loads N synthetic products with stale embeddings (another model's name, random vectors, the
HNSW index in place) into the ``beemanhoney_bench`` database, then measures in one run:

- the raw model: ``SentenceTransformer.encode`` over all the texts in one call, just before and
  just after the backfill (the backfill is compared with their mean), and in calls of
  ``--batch-size`` rows, at the same batch size;
- ``catalog.services.embeddings_refresh`` over the stale rows (rows/s, share spent encoding;
  it drops the HNSW index and builds it at the end, as a large re-embed does), and the index
  build alone;
- a re-run over the now unchanged rows (nothing to embed);
- a naive per-row encode + ``save()`` over a small sample, for context.

    DEBUG=1 HF_HUB_OFFLINE=1 .venv/bin/python -m bench.backfill --rows 10000

Nothing is asserted: the figures are printed (``--markdown`` for docs/BENCHMARKS.md) and saved
as JSON. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import (
    BENCH_DIR,
    bench_connect,
    bench_django_setup,
    catalog_load,
    embedding_texts,
    hnsw_index_build,
    log,
    markdown_table,
    synthetic_products,
    text_table,
    wait_for_quiet,
)

STALE_MODEL = "bench-stale-model"
TARGET_RERUN_S = 2.0
TARGET_RATIO = 0.95


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000, help="stale products to backfill")
    parser.add_argument("--batch-size", type=int, default=64, help="as backfill_embeddings")
    parser.add_argument("--naive-rows", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="MINUTES",
        help="before measuring, wait up to this long for other work to stop",
    )
    parser.add_argument("--markdown", action="store_true", help="also print a markdown block")
    parser.add_argument("--json", type=Path, default=BENCH_DIR / "backfill-results.json")
    return parser.parse_args(argv)


def load_stale_catalog(conn: Any, rows: int, seed: int) -> float:
    """Products whose stored vectors came from 'another model': random, with no text hash."""
    import numpy as np

    products = synthetic_products(seed=seed, count=rows)
    vectors = np.random.default_rng(seed).standard_normal((rows, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    seconds = catalog_load(conn, products, vectors, model_name=STALE_MODEL, hashes=[""] * rows)
    return seconds + hnsw_index_build(conn)


def encode_seconds(
    model: Any, texts: list[str], *, batch_size: int, call_rows: int | None
) -> float:
    """Seconds ``encode`` takes over ``texts``: in one call, or in calls of ``call_rows`` texts."""
    step = call_rows or len(texts)
    started = time.perf_counter()
    for start in range(0, len(texts), step):
        model.encode(
            texts[start : start + step],
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    return time.perf_counter() - started


def backfill_timed(backend: Any, batch_size: int) -> tuple[Any, float, float]:
    """Run ``embeddings_refresh`` and return its report, wall seconds and seconds spent encoding."""
    from catalog.services import embeddings_refresh

    encoding = 0.0
    original = backend.embed_documents

    def embed_documents(texts: list[str]) -> list[list[float]]:
        nonlocal encoding
        started = time.perf_counter()
        try:
            return original(texts)
        finally:
            encoding += time.perf_counter() - started

    backend.embed_documents = embed_documents
    try:
        started = time.perf_counter()
        report = embeddings_refresh(kind="products", batch_size=batch_size)
        seconds = time.perf_counter() - started
    finally:
        del backend.embed_documents
    return report, seconds, encoding


def naive_seconds(backend: Any, rows: int) -> float:
    """Seconds to embed and save ``rows`` rows one at a time, as a hand-written loop would."""
    from django.utils import timezone

    from catalog.embeddings import current_model_name, text_hash
    from catalog.models import Product

    products = list(Product.objects.select_related("category").order_by("pk")[:rows])
    started = time.perf_counter()
    for product in products:
        text = product.embedding_text()
        product.embedding = backend.embed_documents([text])[0]
        product.embedding_model = current_model_name()
        product.embedding_text_hash = text_hash(text)
        product.embedded_at = timezone.now()
        product.save(
            update_fields=["embedding", "embedding_model", "embedding_text_hash", "embedded_at"]
        )
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    database_url = bench_django_setup()
    from catalog.embeddings import current_model_name, get_embedding_backend
    from catalog.models import Product

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    load_before = wait_for_quiet(args.wait_quiet)
    started_at = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    conn = bench_connect(database_url)
    log(f"loading {args.rows} products with stale embeddings")
    load_s = load_stale_catalog(conn, args.rows, args.seed)
    postgres = conn.execute("SHOW server_version").fetchone()[0]
    conn.close()

    backend = get_embedding_backend()
    model = backend._model  # type: ignore[attr-defined]
    # The texts exactly as embeddings_refresh reads them (encode sorts them by length itself).
    rows = list(Product.objects.select_related("category").order_by("pk"))
    texts = [row.embedding_text() for row in rows]
    assert texts == embedding_texts(synthetic_products(seed=args.seed, count=args.rows))
    encode_seconds(model, texts[: args.batch_size * 2], batch_size=args.batch_size, call_rows=None)

    # The backfill has to run over the whole table at once (a large re-embed rebuilds the HNSW
    # index once at the end, which a run over a segment of ids would not do), so the raw encode
    # runs just before and just after it, and the backfill is compared with their mean: load
    # that drifts over the run hits both alike.
    log(f"raw encode of {len(texts)} texts in one call (before)")
    raw_before_s = encode_seconds(model, texts, batch_size=args.batch_size, call_rows=None)
    log("embeddings_refresh over every stale row")
    report, backfill_s, encoding_s = backfill_timed(backend, args.batch_size)
    embedded = report.embedded
    log(f"raw encode of {len(texts)} texts in one call (after)")
    raw_after_s = encode_seconds(model, texts, batch_size=args.batch_size, call_rows=None)
    raw_one_s = (raw_before_s + raw_after_s) / 2
    log(f"raw encode in calls of {args.batch_size} rows")
    raw_batch_s = encode_seconds(
        model, texts, batch_size=args.batch_size, call_rows=args.batch_size
    )
    conn = bench_connect(database_url)
    index_build_s = hnsw_index_build(conn)
    conn.close()
    stale_left = Product.objects.exclude(embedding_model=current_model_name()).count()
    log("embeddings_refresh over every row again, nothing changed")
    rerun, rerun_s, _ = backfill_timed(backend, args.batch_size)
    log(f"naive per-row encode + save over {args.naive_rows} rows (and raw encode of them)")
    naive_texts = texts[: args.naive_rows]
    naive_raw_s = encode_seconds(model, naive_texts, batch_size=args.batch_size, call_rows=None)
    naive_s = naive_seconds(backend, args.naive_rows)

    raw_one_call = len(texts) / raw_one_s
    raw_per_batch = len(texts) / raw_batch_s
    backfill_rate = embedded / backfill_s
    naive = len(naive_texts) / naive_s
    naive_raw = len(naive_texts) / naive_raw_s
    result = {
        "started_at": started_at,
        "python": platform.python_version(),
        "postgres": postgres,
        "rows": args.rows,
        "batch_size": args.batch_size,
        "raw_encode_before_rows_per_s": len(texts) / raw_before_s,
        "raw_encode_after_rows_per_s": len(texts) / raw_after_s,
        "index_build_alone_s": index_build_s,
        "load_s": load_s,
        "raw_encode_one_call_rows_per_s": raw_one_call,
        "raw_encode_per_batch_rows_per_s": raw_per_batch,
        "backfill_rows_per_s": backfill_rate,
        "backfill_s": backfill_s,
        "backfill_encoding_s": encoding_s,
        "backfill_encode_rows_per_s": embedded / encoding_s if encoding_s else 0.0,
        "backfill_embedded": embedded,
        "stale_left": stale_left,
        "rerun_s": rerun_s,
        "rerun_embedded": rerun.embedded,
        "rerun_current": rerun.current,
        "naive_rows": len(naive_texts),
        "naive_rows_per_s": naive,
        "naive_raw_encode_rows_per_s": naive_raw,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "seconds": time.perf_counter() - started,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))

    table = [
        [
            "raw encode, one call (rows/s; mean of the runs before and after the backfill)",
            f"{raw_one_call:.0f} ({result['raw_encode_before_rows_per_s']:.0f} / "
            f"{result['raw_encode_after_rows_per_s']:.0f})",
            "1.00",
        ],
        [
            f"raw encode, calls of {args.batch_size} rows (rows/s)",
            f"{raw_per_batch:.0f}",
            f"{raw_per_batch / raw_one_call:.2f}",
        ],
        [
            f"embeddings_refresh, {embedded:,} stale rows (rows/s)",
            f"{backfill_rate:.0f}",
            f"{backfill_rate / raw_one_call:.2f}",
        ],
        [
            "  its time spent encoding (its encode rows/s)",
            f"{encoding_s / backfill_s:.0%} ({result['backfill_encode_rows_per_s']:.0f})",
            "",
        ],
        [
            "  the HNSW index build alone, as it ends the run (s)",
            f"{index_build_s:.1f}",
            "",
        ],
        [
            f"naive per-row encode + save, {len(naive_texts)} rows (rows/s)",
            f"{naive:.0f}",
            f"{naive / naive_raw:.2f} (to raw encode of the same rows, {naive_raw:.0f}/s)",
        ],
        [
            f"re-run over {rerun.current:,} unchanged rows (s)",
            f"{rerun_s:.2f} ({rerun.embedded} embedded)",
            "",
        ],
    ]
    ratio = backfill_rate / raw_one_call
    verdicts = [
        [
            f"backfill >= {TARGET_RATIO}x raw encode rows/s",
            f"{ratio:.3f}x",
            "met" if ratio >= TARGET_RATIO else "NOT met",
        ],
        [
            f"re-run over {rerun.current:,} unchanged rows < {TARGET_RERUN_S:.0f} s",
            f"{rerun_s:.2f} s",
            "met" if rerun_s < TARGET_RERUN_S else "NOT met",
        ],
    ]
    headers = ["measure", "value", "ratio to raw encode (one call)"]
    print(
        f"Backfill benchmark: {args.rows:,} products, batch size {args.batch_size}, "
        f"PostgreSQL {postgres}, {result['seconds'] / 60:.1f} min, load average "
        f"{load_before[0]:.1f} -> {result['loadavg_after'][0]:.1f}"
    )
    print(f"\n{text_table(headers, table)}")
    print(f"\n{text_table(['target', 'measured', 'verdict'], verdicts)}")
    if stale_left:
        print(f"\nWARNING: {stale_left} rows still stale after the backfill")
    if args.markdown:
        print("\n```markdown")
        print(markdown_table(headers, table))
        print()
        print(markdown_table(["target", "measured", "verdict"], verdicts))
        print("```")
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
