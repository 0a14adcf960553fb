from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from bench import indexes
from bench.indexes import index_definitions, index_drift, indexes_as_migrated
from tests.support import celery_worker

GIN_INDEX = "product_search_vector_gin"


@pytest.mark.django_db
def test_index_drift_names_the_indexes_added_dropped_and_redefined() -> None:
    before = index_definitions(connection.connection)
    with connection.cursor() as cursor:
        cursor.execute("CREATE INDEX probe_stray ON catalog_product (stock)")
        cursor.execute(f'DROP INDEX "{GIN_INDEX}"')
        cursor.execute('DROP INDEX "product_price_id"')
        cursor.execute('CREATE INDEX "product_price_id" ON catalog_product (price DESC, id)')

    drift = index_drift(index_definitions(connection.connection), before)

    assert set(drift.extra) == {"probe_stray"}
    assert drift.missing == {GIN_INDEX: before[GIN_INDEX]}
    assert drift.changed == {"product_price_id": before["product_price_id"]}


@pytest.fixture
def migrated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the migrated indexes are remembered, instead of the checkout's var/bench/."""
    monkeypatch.setattr(indexes, "BENCH_DIR", tmp_path)
    return tmp_path


@pytest.mark.django_db(transaction=True)
def test_a_database_is_held_to_the_indexes_its_migrations_make(migrated_cache: Path) -> None:
    url = celery_worker.test_database_url()
    with psycopg.connect(url, autocommit=True) as conn:
        as_migrated = index_definitions(conn)
        conn.execute(f'DROP INDEX "{GIN_INDEX}"')
        conn.execute("CREATE INDEX probe_stray ON catalog_product (price)")
        try:
            with pytest.raises(SystemExit, match="probe_stray"):
                indexes_as_migrated(url, settings.REDIS_URL)
        finally:
            conn.execute("DROP INDEX probe_stray")

        indexes_as_migrated(url, settings.REDIS_URL)

        assert index_definitions(conn) == as_migrated
    assert len(list(migrated_cache.glob("migrated-indexes-*.json"))) == 1


def test_the_migrated_indexes_are_remembered_per_set_of_every_installed_apps_migrations(
    settings,
) -> None:
    # Of the project's migrations alone: installing simplejwt's token blacklist kept a list
    # without its indexes, and every benchmark refused to run.
    with_blacklist = indexes.migrations_digest()
    apps = [app for app in settings.INSTALLED_APPS if not app.endswith(".token_blacklist")]
    settings.INSTALLED_APPS = apps

    assert indexes.migrations_digest() != with_blacklist
