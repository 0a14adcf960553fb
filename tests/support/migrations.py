"""A data migration's test: rows written as an old migration left the tables, then migrated."""

from typing import Any

from django.apps.registry import Apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

Migration = tuple[str, str]  # (app label, migration name)


def model_as_of(migration: Migration, model: str) -> Any:
    """Migrate back to ``migration``; ``model`` of its app as it was then (a historical model,
    which type checkers cannot know)."""
    executor = MigrationExecutor(connection)
    executor.migrate([migration])
    return executor.loader.project_state([migration]).apps.get_model(migration[0], model)


def migrated_through(migration: Migration) -> Apps:
    """Migrate forward to ``migration``, then on to the latest (as the other tests expect); the
    apps as ``migration`` left them."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([migration])
    apps = executor.loader.project_state([migration]).apps
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    return apps
