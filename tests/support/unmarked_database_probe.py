"""Run on its own by tests/test_conftest.py: a module fixture that reaches the database as
``demo_shop`` does, for a test not marked django_db. Prints the database it reached."""

import sys
from typing import Any

import pytest
from django.db import connection


@pytest.fixture(scope="module")
def database_name(django_db_setup: None, django_db_blocker: Any) -> str:
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        return cursor.fetchone()[0]


def test_unmarked(database_name: str) -> None:
    sys.stdout.write(f"DATABASE {database_name}\n")
