"""An embedding task's retries through the broker and a real worker: the OpenAI backend against a
loopback server that fails as scripted."""

from collections.abc import Iterator
from typing import Any

import pytest
from celery import states
from celery.result import AsyncResult

from catalog.embeddings import current_model_name
from catalog.models import Product
from catalog.tasks import embed_rows
from tests.catalog.factories import ProductFactory
from tests.support.celery_worker import tasks_sent_to, worker_of_its_own_queue
from tests.support.fake_openai import FakeOpenAIServer, HttpError

pytestmark = pytest.mark.django_db(transaction=True)

# Retries wait up to 1, 2 and 4 s: a worker's own retries, sent through the broker again.
BACKOFF_SECONDS = 1
TIMEOUT_SECONDS = 60


@pytest.fixture(scope="module")
def embeddings_api() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def embedding_queue(
    embeddings_api: FakeOpenAIServer, test_broker_url: str, django_db_setup, django_db_blocker
) -> Iterator[str]:
    yield from worker_of_its_own_queue(
        "embed-retries",
        broker_url=test_broker_url,
        blocker=django_db_blocker,
        extra_env={
            "EMBEDDING_BACKEND": "openai",
            "OPENAI_BASE_URL": embeddings_api.base_url,
            "OPENAI_API_KEY": "test",
            "OPENAI_MAX_RETRIES": "0",
            "EMBEDDING_RETRY_BACKOFF_SECONDS": str(BACKOFF_SECONDS),
        },
    )


@pytest.fixture
def api(embeddings_api: FakeOpenAIServer, settings: Any) -> FakeOpenAIServer:
    """The loopback API, its script and requests cleared; this process embeds with it too."""
    embeddings_api.reset()
    settings.EMBEDDING_BACKEND = "openai"
    settings.OPENAI_BASE_URL = embeddings_api.base_url
    settings.OPENAI_API_KEY = "test"
    return embeddings_api


def _embed(queue: str, product: Product) -> AsyncResult:
    with tasks_sent_to(queue):
        result = embed_rows.delay("products", [product.pk])
    result.get(timeout=TIMEOUT_SECONDS, propagate=False)
    return result


def _is_embedded(product: Product) -> bool:
    return Product.objects.get(pk=product.pk).embedding_model == current_model_name()


@pytest.mark.parametrize(
    "statuses",
    [(503, 429), (408, 409)],  # overloaded, rate-limited; a request timeout, a conflict
)
def test_a_passing_provider_error_is_retried_until_the_task_succeeds(
    api: FakeOpenAIServer, embedding_queue: str, statuses: tuple[int, int]
) -> None:
    product = ProductFactory.create()
    api.script_embedding_errors(*[HttpError(status) for status in statuses])

    result = _embed(embedding_queue, product)

    assert result.state == states.SUCCESS
    assert result.result == {"embedded": 1, "current": 0}
    assert len(api.embedding_requests()) == 3
    assert _is_embedded(product)


QUOTA = HttpError(429, "You exceeded your current quota.", code="insufficient_quota")


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (QUOTA, "Error code: 429 - You exceeded your current quota."),
        (HttpError(400), "Error code: 400"),
    ],
    ids=["exhausted-quota", "bad-request"],
)
def test_an_error_no_retry_can_pass_is_not_retried(
    api: FakeOpenAIServer, embedding_queue: str, error: HttpError, message: str
) -> None:
    product = ProductFactory.create()
    api.script_embedding_errors(error, error)

    result = _embed(embedding_queue, product)

    assert result.state == states.FAILURE
    assert str(result.result).startswith(message)
    assert len(api.embedding_requests()) == 1
    assert not _is_embedded(product)


def test_the_task_gives_up_after_three_retries(api: FakeOpenAIServer, embedding_queue: str) -> None:
    product = ProductFactory.create()
    api.script_embedding_errors(*[HttpError(500)] * 5)

    result = _embed(embedding_queue, product)

    assert result.state == states.FAILURE
    assert str(result.result).startswith("Error code: 500")
    assert len(api.embedding_requests()) == 4
    assert not _is_embedded(product)
