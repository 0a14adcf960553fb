"""A help article's passages (its title, then its paragraphs), embedded, and the extract of a
long article that answers a question best."""

from __future__ import annotations

import logging

import numpy as np

from beemanhoney.common.lru import LruCache
from beemanhoney.common.text import clip
from catalog.embeddings import (
    EmbeddingBackend,
    embed_query,
    get_embedding_backend,
    query_embedding_errors,
    text_hash,
)
from catalog.models import article_paragraphs, article_passages
from catalog.selectors import stored_passage_vectors

logger = logging.getLogger(__name__)

# Cosine similarity (all-MiniLM-L6-v2) of a question to an article's title or best paragraph,
# below which the article does not answer it. On the demo help centre, questions it answers
# score 0.49 or more; "who won the world cup?" or "tell me a joke" score 0.1, and the nearest
# off-topic question found ("can I bring my dog?") 0.31.
RELEVANCE_FLOOR = 0.4
# Between the paragraphs of an extract where others were left out.
OMISSION = "\n\n…\n\n"

# The passages of recently read articles, embedded: a help centre's articles are few and asked
# about again and again, and customers' own queries must not push them out of the query cache.
_passage_vectors: LruCache[np.ndarray] = LruCache(size=256)


def passage_vectors(title: str, body: str) -> np.ndarray:
    """One row per passage (``article_passages``): as stored with the articles where a passage
    of that text was embedded by the configured model, the others embedded now (an article
    edited since its last embedding, or an extract's omission marks)."""
    passages = article_passages(title, body)
    backend = get_embedding_backend()
    key = (backend.model_name, text_hash("\n\n".join(passages)))
    return _passage_vectors.get_or_make(key, lambda: _vectors(passages, backend))


def _vectors(passages: list[str], backend: EmbeddingBackend) -> np.ndarray:
    vectors = stored_passage_vectors(texts=passages, model_name=backend.model_name)
    missing = [text for text in dict.fromkeys(passages) if text not in vectors]
    if missing:
        vectors.update(zip(missing, backend.embed_documents(missing), strict=True))
    return np.asarray([vectors[text] for text in passages], dtype=np.float32)


def forget_passage_vectors() -> None:
    """Read or embed every article's passages again when next asked (after a test, say)."""
    _passage_vectors.clear()


def passage_nearness(*, title: str, body: str, question: str) -> np.ndarray:
    """The cosine of ``question`` to each passage, as ``passage_vectors`` orders them. Raises
    ``query_embedding_errors()`` while the embedding API is away."""
    # The question first: its embedding is cached, and paused after a failure, so an outage
    # costs at most one timeout.
    asked = np.asarray(embed_query(question))
    return passage_vectors(title, body) @ asked


def article_extract(*, title: str, body: str, question: str, limit: int) -> str:
    """``body`` whole if it fits in ``limit`` characters. Otherwise the paragraphs nearest
    ``question`` in meaning, as many as fit, in the article's own order and marked where
    others were left out; the first ``limit`` characters while the embedding API is away."""
    if len(body) <= limit:
        return body
    paragraphs = article_paragraphs(body)
    try:
        nearness = passage_nearness(title=title, body=body, question=question)[1:]
    except query_embedding_errors():
        logger.warning("catalog.article_extract_by_position", extra={"title": title[:100]})
        return clip(body, limit)
    chosen: set[int] = set()
    # Each paragraph is counted with one mark, but marks both before and after the kept ones
    # ("…\n\n" and "\n\n…") come to one character more than the one counted for them.
    length = 1
    for index in np.argsort(-nearness, kind="stable").tolist():
        cost = len(paragraphs[index]) + len(OMISSION)
        if length + cost <= limit:
            chosen.add(index)
            length += cost
    if not chosen:  # no paragraph fits with its mark: the nearest, cut; "…" marks the rest
        return paragraphs[int(np.argmax(nearness))][: limit - 1] + "…"
    return _joined(paragraphs, sorted(chosen))


def _joined(paragraphs: list[str], kept: list[int]) -> str:
    """The kept paragraphs in order, with ``OMISSION`` wherever paragraphs were left out
    (before, between and after)."""
    parts: list[str] = []
    previous = -1
    for index in kept:
        parts.append(OMISSION if index != previous + 1 else "\n\n" if parts else "")
        parts.append(paragraphs[index])
        previous = index
    if previous != len(paragraphs) - 1:
        parts.append(OMISSION)
    return "".join(parts).strip("\n")
