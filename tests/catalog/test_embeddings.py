import numpy as np
import pytest

from catalog.embeddings import LocalEmbeddingBackend, get_embedding_backend
from catalog.models import EMBEDDING_DIMENSIONS

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
