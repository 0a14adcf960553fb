"""Import benchmark: ``product_import`` of a file of new products, and of the same file again.

Synthetic products (``bench.synthetic_products``, another seed than ``bench.search``'s) are
imported as rows of ``import_catalog``'s columns into ``beemanhoney_probe``, a database of their
own on the same server (emptied before each round); each round times the import of the new rows,
and the last also an import of the same file again, every row unchanged.

    DEBUG=1 HF_HUB_OFFLINE=1 .venv/bin/python -m bench.catalog_import --rows 20000

Nothing is asserted; see bench/README.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from bench import bench_connect, bench_django_setup, catalog_truncate, log, synthetic_products

PROBE_DATABASE = "beemanhoney_probe"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=3)
    return parser.parse_args(argv)


def import_rows(*, seed: int, count: int) -> list[dict[str, str]]:
    return [
        {
            "sku": product.sku,
            "name": product.name,
            "category": product.category,
            "description": product.description,
            "price": str(product.price),
            "weight_grams": str(product.weight_grams),
            "stock": str(product.stock),
            "tags": ";".join(product.tags),
            "origin": product.origin,
            "floral_source": product.floral_source,
        }
        for product in synthetic_products(seed=seed, count=count)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    conn = bench_connect(bench_django_setup(PROBE_DATABASE))
    from catalog.services import product_import

    rows = import_rows(seed=args.seed, count=args.rows)
    for number in range(args.rounds):
        catalog_truncate(conn)
        started = time.perf_counter()
        report = product_import(rows=rows)
        seconds = time.perf_counter() - started
        print(f"round {number + 1}: {report.created} new rows in {seconds:.1f} s", flush=True)
    started = time.perf_counter()
    report = product_import(rows=rows)
    seconds = time.perf_counter() - started
    print(f"the same file again: {report.unchanged} unchanged rows in {seconds:.1f} s")
    log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
