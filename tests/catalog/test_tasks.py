import json
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import openai
import pytest
from celery import states
from django.utils import timezone
from django_celery_results.models import TaskResult

from catalog import services
from catalog.embeddings import current_model_name, text_hash
from catalog.models import EMBEDDING_DIMENSIONS, KnowledgeArticle, Product
from catalog.services import product_create
from catalog.tasks import embed_retry_wait_max, embed_rows, repair_stale_embeddings
from tests.catalog.factories import CategoryFactory, KnowledgeArticleFactory, ProductFactory
from tests.support.fake_openai import FakeOpenAIServer, HttpError

TIMEOUT_SECONDS = 30


def wait_for(condition: Callable[[], bool], timeout: float = TIMEOUT_SECONDS) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def is_embedded(pk: int) -> bool:
    return Product.objects.get(pk=pk).embedding_model == current_model_name()


@pytest.mark.django_db(transaction=True)
def test_a_created_product_is_embedded_by_the_worker(celery_worker) -> None:
    product = product_create(
        sku="BH-TASK-001",
        name="Lime Blossom Raw Honey 340g",
        category=CategoryFactory.create(),
        price=Decimal("9.95"),
        description="Pale greenish-gold honey with a fresh, minty lift.",
    )

    embedded = wait_for(lambda: is_embedded(product.pk))

    product.refresh_from_db()
    assert embedded, celery_worker.log()[-3000:]
    assert product.embedding_text_hash == text_hash(product.embedding_text())
    assert len(product.embedding) == EMBEDDING_DIMENSIONS


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_embed_task_finds_its_work_done(celery_worker) -> None:
    product = product_create(
        sku="BH-TASK-002",
        name="Clover Raw Honey 500g",
        category=CategoryFactory.create(),
        price=Decimal(8),
    )
    assert wait_for(lambda: is_embedded(product.pk)), celery_worker.log()[-3000:]
    embedded_at = Product.objects.get(pk=product.pk).embedded_at

    result = embed_rows.delay("products", [product.pk])

    assert result.get(timeout=TIMEOUT_SECONDS) == {"embedded": 0, "current": 1}
    assert Product.objects.get(pk=product.pk).embedded_at == embedded_at


@pytest.mark.django_db(transaction=True)
def test_a_large_import_is_embedded_by_tasks_of_bounded_size(
    celery_worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "EMBED_TASK_ROWS", 2)
    rows = [
        {"sku": f"BH-TASK-1{n}", "name": f"Raw Honey No. {n}", "category": "Raw", "price": "8"}
        for n in range(5)
    ]

    started = timezone.now()

    services.product_import(rows=rows)

    tasks = TaskResult.objects.filter(task_name="catalog.embed_rows", date_created__gte=started)
    finished = wait_for(lambda: tasks.filter(status=states.SUCCESS).count() == 3)

    assert finished, celery_worker.log()[-3000:]
    assert sum(json.loads(task.result)["embedded"] for task in tasks) == 5
    assert not Product.objects.exclude(embedding_model=current_model_name()).exists()


@pytest.mark.django_db
def test_rows_their_own_task_left_stale_are_embedded_by_the_hourly_repair(settings) -> None:
    settings.EMBEDDING_REPAIR_MAX_ROWS = 2
    left_stale = ProductFactory.create_batch(3)  # saved, and their task never ran
    for hours, product in zip([4, 3, 2], left_stale, strict=True):
        Product.objects.filter(pk=product.pk).update(
            updated_at=timezone.now() - timedelta(hours=hours)
        )
    article = KnowledgeArticleFactory.create()
    KnowledgeArticle.objects.filter(pk=article.pk).update(
        updated_at=timezone.now() - timedelta(hours=2)
    )
    just_saved = ProductFactory.create()  # its task may still be on its way

    repair_stale_embeddings()

    # The two waiting longest (the limit), then the third at the next hour's repair.
    assert [is_embedded(p.pk) for p in left_stale] == [True, True, False]
    assert not is_embedded(just_saved.pk)
    assert KnowledgeArticle.objects.get(pk=article.pk).embedding_model == current_model_name()
    repair_stale_embeddings()
    assert is_embedded(left_stale[2].pk)


@pytest.mark.django_db
def test_a_row_the_model_always_refuses_does_not_hold_back_the_repair_of_the_others(
    openai_embeddings: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    openai_embeddings.refuse_embedding_inputs_with("Unsayable")
    refused = ProductFactory.create(name="Unsayable Honey")
    others = ProductFactory.create_batch(4)
    # All left stale by their tasks, the refused row waiting longest (so repaired first).
    for hours, product in enumerate([refused, *others]):
        Product.objects.filter(pk=product.pk).update(
            updated_at=timezone.now() - timedelta(hours=9 - hours)
        )

    repair_stale_embeddings()

    assert [is_embedded(p.pk) for p in others] == [True] * 4
    assert not is_embedded(refused.pk)
    [logged] = [r for r in caplog.records if r.getMessage() == "catalog.embedding_refused"]
    assert logged.id == refused.pk  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_the_repair_stops_at_an_error_every_row_would_meet(
    openai_embeddings: FakeOpenAIServer,
) -> None:
    stale = ProductFactory.create_batch(2)
    Product.objects.update(updated_at=timezone.now() - timedelta(hours=2))
    openai_embeddings.script_embedding_errors(HttpError(401), HttpError(401), HttpError(401))

    with pytest.raises(openai.AuthenticationError):
        repair_stale_embeddings()

    assert len(openai_embeddings.embedding_requests()) == 1  # not once per row
    assert not any(is_embedded(p.pk) for p in stale)


@pytest.mark.parametrize(
    ("visibility_timeout", "time_limit", "longest"), [(300, 150, 150), (3600, 150, 600)]
)
def test_an_embedding_retry_waits_no_longer_than_the_broker_holds_it_for_one_worker(
    settings, visibility_timeout: int, time_limit: int, longest: int
) -> None:
    # A retry past the visibility timeout (less the run's own time) was handed to a second worker.
    settings.CELERY_VISIBILITY_TIMEOUT = visibility_timeout
    settings.CELERY_TASK_TIME_LIMIT = time_limit

    assert embed_retry_wait_max() == longest
