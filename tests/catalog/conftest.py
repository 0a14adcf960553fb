from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.fake_openai import FakeOpenAIServer


@pytest.fixture
def openai_embeddings(settings: Any) -> Iterator[FakeOpenAIServer]:
    """The OpenAI embedding backend against a loopback server, without the client's retries."""
    with FakeOpenAIServer() as server:
        settings.EMBEDDING_BACKEND = "openai"
        settings.OPENAI_BASE_URL = server.base_url
        settings.OPENAI_API_KEY = "test"
        settings.OPENAI_MAX_RETRIES = 0
        yield server
