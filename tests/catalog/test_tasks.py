import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from catalog.embeddings import current_model_name, text_hash
from catalog.models import EMBEDDING_DIMENSIONS, Product
from catalog.services import product_create
from catalog.tasks import embed_rows
from tests.catalog.factories import CategoryFactory

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
        category=CategoryFactory(),
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
        category=CategoryFactory(),
        price=Decimal(8),
    )
    assert wait_for(lambda: is_embedded(product.pk)), celery_worker.log()[-3000:]
    embedded_at = Product.objects.get(pk=product.pk).embedded_at

    result = embed_rows.delay("products", [product.pk])

    assert result.get(timeout=TIMEOUT_SECONDS) == {"embedded": 0, "current": 1}
    assert Product.objects.get(pk=product.pk).embedded_at == embedded_at
