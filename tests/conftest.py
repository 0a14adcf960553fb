import signal
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.test.utils import override_settings

from beemanhoney.celery import app as celery_app
from catalog.knowledge_passages import forget_passage_vectors
from catalog.models import Category, KnowledgeArticle, Product, ProductNameWord
from catalog.query_keywords import forget_common_lexemes
from catalog.search_statements import forget_few_rows
from catalog.services import catalog_statistics_refresh
from catalog.spelling import forget_vocabularies
from tests.support.browser import chromium_page
from tests.support.celery_worker import (
    WorkerProcess,
    new_queue_name,
    queues_removed,
    tasks_sent_to,
)
from tests.support.fake_openai import FakeOpenAIServer

# Tests use their own Redis database so a `make run` worker on the same server never
# consumes their tasks.
TEST_REDIS_DB = 15


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``django_db`` every test that a fixture of ours reaches the database for.

    pytest-django makes the test database only when a selected test is marked, and our module
    and session fixtures (``demo_shop``, ``celery_worker``...) unblock the database themselves:
    ``-k`` picking only unmarked tests that use them ran them on the development database, and
    ``demo_shop``'s teardown deleted its catalogue.
    """
    for item in items:
        needs_database = "django_db_setup" in getattr(item, "fixturenames", ())
        if needs_database and item.get_closest_marker("django_db") is None:
            item.add_marker(pytest.mark.django_db)


def _with_redis_db(url: str, db: int) -> str:
    return urlsplit(url)._replace(path=f"/{db}").geturl()


@pytest.fixture(scope="session", autouse=True)
def test_broker_url() -> Iterator[str]:
    url = _with_redis_db(settings.REDIS_URL, TEST_REDIS_DB)
    original = settings.REDIS_URL, settings.CELERY_BROKER_URL
    settings.REDIS_URL = settings.CELERY_BROKER_URL = url
    celery_app.conf["broker_url"] = url
    yield url
    settings.REDIS_URL, settings.CELERY_BROKER_URL = original


TEST_CACHE_DB = 14


@pytest.fixture(scope="session", autouse=True)
def _test_cache(test_broker_url: str) -> Iterator[None]:
    """Throttle counters in a Redis database of the tests' own, emptied before each test;
    passwords hashed fast (a test's users need no protection)."""
    cache_settings = {**settings.CACHES["default"]}
    cache_settings["LOCATION"] = _with_redis_db(settings.REDIS_URL, TEST_CACHE_DB)
    fast_hashing = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with override_settings(CACHES={"default": cache_settings}, PASSWORD_HASHERS=fast_hashing):
        yield


@pytest.fixture(autouse=True)
def _empty_cache(_test_cache: None) -> None:
    cache.clear()
    forget_common_lexemes()  # each test's searches read the statistics as they are
    forget_few_rows()  # and count the rows as they are
    forget_vocabularies()  # and read the words spelling corrects to as they are
    forget_passage_vectors()  # and read the passages as stored


@pytest.fixture(scope="session", autouse=True)
def _plain_static_files() -> None:
    """Production hashes static files at collectstatic time; tests serve them unhashed."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(scope="session", autouse=True)
def test_queue(test_broker_url: str) -> Iterator[str]:
    """A queue of this session's own, so concurrent test runs never take each other's tasks;
    it and every other queue the session named are removed from the broker at the end."""
    queue = new_queue_name("test")
    celery_app.conf.task_default_queue = queue
    yield queue
    queues_removed(test_broker_url)


@pytest.fixture(autouse=True)
def _tasks_unread_unless_a_worker_is_asked_for(
    request: pytest.FixtureRequest, test_queue: str
) -> Iterator[None]:
    """Only a test that asks for ``celery_worker`` has its tasks run by it. Another test's reply,
    run meanwhile, would add messages it does not expect and hold locks as pytest-django empties
    the tables afterwards (a deadlock that failed CI). Tasks a module's fixture already sends to
    a worker of its own still go there."""
    sent_elsewhere = celery_app.conf.task_default_queue != test_queue
    if sent_elsewhere or "celery_worker" in request.fixturenames:
        yield
        return
    with tasks_sent_to(f"{test_queue}-unread"):
        yield


@pytest.fixture(scope="session")
def celery_worker(django_db_setup: None, django_db_blocker, test_broker_url: str, test_queue: str):
    """One real worker process for the session, reading and writing the test database."""
    with django_db_blocker.unblock():
        worker = WorkerProcess(broker_url=test_broker_url, queue=test_queue).start()
    yield worker
    worker.stop()


@pytest.fixture
def ctrl_c() -> Iterator[None]:
    """Python's own Ctrl-C handler, as in a terminal: `make test` starts pytest with SIGINT
    ignored (its parent takes Ctrl-C)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def browser_page() -> Iterator[Any]:
    yield from chromium_page()


@pytest.fixture
def openai_embeddings(settings: Any) -> Iterator[FakeOpenAIServer]:
    """The OpenAI embedding backend against a loopback server, without the client's retries."""
    with FakeOpenAIServer() as server:
        settings.EMBEDDING_BACKEND = "openai"
        settings.OPENAI_BASE_URL = server.base_url
        settings.OPENAI_API_KEY = "test"
        settings.OPENAI_MAX_RETRIES = 0
        yield server


@pytest.fixture(scope="module")
def demo_shop(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """The demo shop, loaded and embedded once for the module, removed afterwards."""
    with django_db_blocker.unblock():
        call_command("load_demo_data")
    yield
    with django_db_blocker.unblock():
        Product.objects.all().delete()
        ProductNameWord.objects.all().delete()
        Category.objects.all().delete()
        KnowledgeArticle.objects.all().delete()
        catalog_statistics_refresh()  # so no later test finds the demo shop's common words
