"""The suite's own fixtures keep to the test database, whichever tests are picked."""

import os
import subprocess
import sys
import uuid

import pytest

from tests.support.celery_worker import PROJECT_DIR


@pytest.mark.slow
def test_a_fixture_reaching_the_database_for_an_unmarked_test_gets_the_test_database() -> None:
    # On its own (``-k``), such a test used to run on the development database, and
    # ``demo_shop``'s teardown deleted its catalogue.
    test_database = f"test_bh_unmarked_{uuid.uuid4().hex[:8]}"

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "-q",
         "tests/support/unmarked_database_probe.py"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        env={**os.environ, "TEST_DATABASE_NAME": test_database},
        timeout=600,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"DATABASE {test_database}\n" in result.stdout
