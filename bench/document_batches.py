"""Document encoding: ``SentenceTransformer.encode`` against ``LocalEmbeddingBackend``'s batches.

``encode`` sorts a call's texts by characters and pads each batch to its longest text; the
backend sorts them by tokens and runs the model in torch's inference mode. To tell the two
apart, the model also runs in ``encode``'s order in each mode. The texts are
``bench.backfill``'s (the synthetic products' embedding texts), split into blocks that every
way encodes in turn, in rotating order, so a host that speeds up or slows down meanwhile meets
them alike. No database is used.

    DEBUG=1 HF_HUB_OFFLINE=1 .venv/bin/python -m bench.document_batches --markdown

Nothing is asserted; see bench/README.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench import bench_environment, embedding_texts, log, synthetic_products, tables_print

BATCH_SIZE = 64


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3_333)
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1, help="as bench.backfill's")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    return parser.parse_args(argv)


def padding(lengths: Sequence[int]) -> float:
    """Padded tokens over text tokens, for texts batched in this order."""
    padded = sum(
        max(lengths[first : first + BATCH_SIZE]) * len(lengths[first : first + BATCH_SIZE])
        for first in range(0, len(lengths), BATCH_SIZE)
    )
    return padded / sum(lengths)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    bench_environment()
    import django
    import torch

    django.setup()
    from catalog.embeddings import LocalEmbeddingBackend

    backend = LocalEmbeddingBackend(batch_size=BATCH_SIZE)
    model = backend._model
    texts = embedding_texts(synthetic_products(seed=args.seed, count=args.rows))
    tokens = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]

    def by_characters(block: list[int]) -> list[int]:
        return sorted(block, key=lambda index: -len(texts[index]))

    def run_model(order: list[int], mode: Any) -> None:
        with mode():
            backend._in_batches([tokens[index] for index in order])

    ways: dict[str, Callable[[list[int]], object]] = {
        "encode (by characters, no_grad)": lambda block: model.encode(
            [texts[index] for index in block],
            batch_size=BATCH_SIZE,
            normalize_embeddings=True,
            show_progress_bar=False,
        ),
        "the model by characters, no_grad": lambda block: run_model(
            by_characters(block), torch.no_grad
        ),
        "the model by characters, inference mode": lambda block: run_model(
            by_characters(block), torch.inference_mode
        ),
        "embed_documents (by tokens, inference mode)": lambda block: backend.embed_documents(
            [texts[index] for index in block]
        ),
    }
    blocks = [list(range(start, len(texts), args.blocks)) for start in range(args.blocks)]
    seconds = dict.fromkeys(ways, 0.0)
    names = list(ways)
    for number, block in enumerate(blocks):
        for name in names[number % len(names) :] + names[: number % len(names)]:
            started = time.perf_counter()
            ways[name](block)
            seconds[name] += time.perf_counter() - started
        log(f"block {number + 1} of {len(blocks)}")
    encode_rate = len(texts) / seconds[names[0]]
    character_padding = sum(
        padding([len(tokens[index]) for index in by_characters(block)]) for block in blocks
    ) / len(blocks)
    token_padding = sum(
        padding(sorted(len(tokens[index]) for index in block)) for block in blocks
    ) / len(blocks)
    rows = [
        [
            name,
            f"{len(texts) / seconds[name]:.1f}",
            f"{len(texts) / seconds[name] / encode_rate:.2f}",
            f"{token_padding if 'by tokens' in name else character_padding:.3f}",
        ]
        for name in names
    ]
    print(f"{len(texts)} texts in {len(blocks)} blocks, batches of {BATCH_SIZE}")
    tables_print(
        (["way", "rows/s", "ratio to encode", "padded / text tokens"], rows),
        markdown=args.markdown,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
