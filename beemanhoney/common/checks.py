"""System checks of the database itself: ``migrate`` runs them before it migrates."""

from collections.abc import Sequence
from typing import Any

from django.core import checks
from django.db import connections

INVALID_INDEXES = """
    SELECT index.relname
    FROM pg_index
    JOIN pg_class AS index ON index.oid = pg_index.indexrelid
    JOIN pg_namespace ON pg_namespace.oid = index.relnamespace
    WHERE NOT pg_index.indisvalid AND pg_namespace.nspname = current_schema()
    ORDER BY index.relname
"""


def invalid_indexes_check(
    app_configs: Sequence[Any] | None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Indexes a ``CREATE INDEX CONCURRENTLY`` left invalid, its build cancelled or failed (a
    killed ``migrate``): PostgreSQL keeps such an index, never reads it and still writes it; a
    migration building it again fails on its name, and one building it ``IF NOT EXISTS`` would
    record itself applied without it."""
    found = []
    for alias in databases or ():
        with connections[alias].cursor() as cursor:
            cursor.execute(INVALID_INDEXES)
            found += [name for (name,) in cursor.fetchall()]
    return [
        checks.Error(
            f"Index {name} is invalid: a concurrent build of it was interrupted.",
            hint=f'Run DROP INDEX CONCURRENTLY "{name}"; then migrate again.',
            id="common.E001",
        )
        for name in found
    ]
