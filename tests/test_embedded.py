"""The embedded servers: real, shared, and never widening a private folder's permissions."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import psycopg

from beemanhoney import embedded
from tests.support.celery_worker import PROJECT_DIR


def _embedded(action: str, var_dir: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "beemanhoney.embedded", action],
        cwd=PROJECT_DIR,
        env={**os.environ, "BEEMAN_VAR_DIR": str(var_dir)},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_embedded_postgres_in_a_private_folder_leaves_the_folder_private(tmp_path: Path) -> None:
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    var_dir = private / "project" / "var"
    var_dir.parent.mkdir()
    try:
        started = _embedded("start", var_dir)
        database_url = started.split("postgres:", 1)[1].split()[0]

        with psycopg.connect(database_url) as conn:
            version = conn.execute("SELECT default_version FROM pg_available_extensions "
                                   "WHERE name = 'vector'").fetchone()  # fmt: skip
        assert version is not None
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        assert (var_dir / "pgdata").exists()
        assert "postgres: running" in _embedded("status", var_dir)
    finally:
        _embedded("stop", var_dir)
        if (var_dir / "pgdata").is_symlink():
            shutil.rmtree((var_dir / "pgdata").resolve().parent, ignore_errors=True)

    assert "postgres: stopped" in _embedded("status", var_dir)
    assert private.stat().st_mode & 0o077 == 0


def test_private_ancestors_names_the_folders_others_cannot_enter(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "inner").mkdir()

    assert private in embedded.private_ancestors(private / "inner" / "var")
