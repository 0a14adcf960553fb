from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import IntegrityError, connection

from beemanhoney.common.checks import invalid_indexes_check

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def index_left_invalid() -> Iterator[str]:
    """An index whose concurrent build failed, as a killed ``migrate`` leaves one."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE probe_half_built (value integer)")
        cursor.execute("INSERT INTO probe_half_built VALUES (1), (1)")
        try:
            with pytest.raises(IntegrityError):
                cursor.execute(
                    "CREATE UNIQUE INDEX CONCURRENTLY probe_half_built_value"
                    " ON probe_half_built (value)"
                )
            yield "probe_half_built_value"
        finally:
            cursor.execute("DROP TABLE probe_half_built")


def test_migrate_refuses_to_run_past_an_index_a_concurrent_build_left_invalid(
    index_left_invalid: str,
) -> None:
    with pytest.raises(SystemCheckError) as refusal:
        # As from the command line: call_command skips the checks unless told.
        call_command("migrate", verbosity=0, skip_checks=False)

    assert f"Index {index_left_invalid} is invalid" in str(refusal.value)
    assert f'DROP INDEX CONCURRENTLY "{index_left_invalid}"' in str(refusal.value)


def test_a_database_whose_indexes_are_all_valid_passes() -> None:
    assert invalid_indexes_check(None, databases=["default"]) == []
