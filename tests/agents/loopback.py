"""The OpenAI provider, in this process, against a loopback OpenAI-compatible server."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.fake_openai import FakeOpenAIServer

MODEL = "gpt-test-mini"
# US dollars per million tokens: 1 per prompt token, 2 per completion token.
PRICES = {MODEL: {"prompt": 1.0, "completion": 2.0}}


@contextmanager
def loopback_openai(settings: Any, *, fallback: str = "") -> Iterator[FakeOpenAIServer]:
    """Point the OpenAI provider at a fresh loopback server, without client retries."""
    with FakeOpenAIServer() as server:
        settings.LLM_PROVIDER = "openai"
        settings.LLM_FALLBACK_PROVIDER = fallback
        settings.OPENAI_API_KEY = "sk-test"
        settings.OPENAI_BASE_URL = server.base_url
        settings.OPENAI_MAX_RETRIES = 0
        settings.OPENAI_CHAT_MODEL = MODEL
        settings.MODEL_PRICES_PER_MILLION = PRICES
        yield server
