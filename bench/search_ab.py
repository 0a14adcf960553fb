"""Paired A/B of ``GET /api/products/?q=`` between two checkouts, on the same catalogue.

On a shared 2-core machine the absolute latency of the same code drifts by 20-40% within an
hour, far more than most changes are worth. This runs a gunicorn for each checkout against the
catalogue ``bench.search`` loaded last (``beemanhoney_bench``) and sends every held-out query to
both, in alternating order, so drift hits both alike. It reports each side's p50 / p95 for new
queries and for cached embeddings, the per-query differences, and how many first pages the two
returned alike (a pure speed change keeps all of them).

    git worktree add /tmp/search-base <rev>
    DEBUG=1 HF_HUB_OFFLINE=1 .venv/bin/python -m bench.search_ab --baseline /tmp/search-base

Both sides run this checkout's virtualenv unless ``--baseline-python`` / ``--candidate-python``
name another interpreter (a virtualenv's ``bin/python``, with the same requirements), and share
its exported ONNX graph. Nothing is asserted; see bench/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import (
    BENCH_DIR,
    PROJECT_DIR,
    bench_django_setup,
    latency_summary,
    log,
    percentile,
    query_texts,
    wait_for_quiet,
)
from bench.search import WARMUP_QUERIES, gunicorn_start, gunicorn_stop

QUERY_OFFSET = 5_000  # held out from bench.search's own queries


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the checkout to beat")
    parser.add_argument("--candidate", type=Path, default=PROJECT_DIR)
    parser.add_argument("--baseline-python", default=sys.executable, metavar="PYTHON")
    parser.add_argument("--candidate-python", default=sys.executable, metavar="PYTHON")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="MINUTES")
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a filter every search also sends, e.g. category=comb-honey (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        args.filters = dict(pair.split("=", 1) for pair in args.filter)
    except ValueError:
        parser.error("--filter takes NAME=VALUE")
    return args


def _search(conn: http.client.HTTPConnection, text: str, filters: dict[str, str]) -> list[str]:
    conn.request("GET", "/api/products/?" + urllib.parse.urlencode({"q": text, **filters}))
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise SystemExit(f"GET /api/products/?q={text!r} answered {response.status}: {body!r}")
    return [product["sku"] for product in json.loads(body)["results"]]


def paired_latencies(
    conns: Sequence[http.client.HTTPConnection],
    queries: Sequence[str],
    filters: dict[str, str] | None = None,
) -> tuple[list[list[float]], int]:
    """Each query to every side, the order alternating; seconds per side and equal answers."""
    seconds: list[list[float]] = [[] for _ in conns]
    alike = 0
    for number, text in enumerate(queries):
        order = range(len(conns)) if number % 2 == 0 else reversed(range(len(conns)))
        answers = {}
        for side in order:
            started = time.perf_counter()
            answers[side] = _search(conns[side], text, filters or {})
            seconds[side].append(time.perf_counter() - started)
        alike += len({tuple(skus) for skus in answers.values()}) == 1
    return seconds, alike


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    database_url = bench_django_setup()
    sides = {"baseline": args.baseline.resolve(), "candidate": args.candidate.resolve()}
    pythons = {"baseline": args.baseline_python, "candidate": args.candidate_python}
    for name, path in sides.items():
        if not (path / "beemanhoney" / "wsgi.py").is_file():
            raise SystemExit(f"--{name} {path} is not a checkout of this project")
    queries = query_texts(seed=args.seed, count=args.queries, offset=QUERY_OFFSET)
    warmups = query_texts(seed=args.seed, count=WARMUP_QUERIES, offset=2_000_000)
    load_start = wait_for_quiet(args.wait_quiet)
    servers = []
    try:
        for name, path in sides.items():
            log(f"starting gunicorn for the {name}: {path} on {pythons[name]}")
            log_path = BENCH_DIR / f"gunicorn-ab-{name}.log"
            servers.append(gunicorn_start(database_url, log_path, path, pythons[name]))
        conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _, port in servers]
        paired_latencies(conns, warmups, args.filters)
        log(f"{len(queries)} new queries, then again with their embeddings cached")
        new_s, alike = paired_latencies(conns, queries, args.filters)
        cached_s, _ = paired_latencies(conns, queries, args.filters)
    finally:
        for process, _ in servers:
            gunicorn_stop(process)
    report: dict[str, Any] = {
        "load_average": [load_start[0], os.getloadavg()[0]],
        "filters": args.filters,
    }
    for side, name in enumerate(sides):
        report[name] = {
            "path": str(sides[name]),
            "python": pythons[name],
            "new": latency_summary(new_s[side]),
            "cached": latency_summary(cached_s[side]),
        }
    differences = [(b - c) * 1000 for b, c in zip(new_s[0], new_s[1], strict=True)]
    report["new_query_saving_ms"] = {
        "p50": percentile(differences, 50),
        "share_faster": sum(d > 0 for d in differences) / len(differences),
    }
    report["first_pages_alike"] = f"{alike} of {len(queries)}"
    for name in sides:
        new, cached = report[name]["new"], report[name]["cached"]
        print(
            f"{name:9s} new p50 {new['p50']:.1f} / p95 {new['p95']:.1f} ms, "
            f"cached p50 {cached['p50']:.1f} / p95 {cached['p95']:.1f} ms  "
            f"({report[name]['path']} on {report[name]['python']})"
        )
    saving = report["new_query_saving_ms"]
    print(
        f"candidate saves {saving['p50']:.1f} ms per new query (median of paired differences), "
        f"faster on {saving['share_faster']:.0%} of them; first pages alike: "
        f"{report['first_pages_alike']}; load average {report['load_average']}"
    )
    (BENCH_DIR / "search-ab-results.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
