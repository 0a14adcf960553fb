"""What ``make run`` and ``make test`` do once the virtualenv is ready.

``run``: migrate, bootstrap (admin login, demo data), then gunicorn + a Celery worker until
Ctrl-C or SIGTERM; every process it started is stopped on the way out, including the embedded
servers it had to start itself. ``test``: the same services, then pytest.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from beemanhoney import embedded

PROJECT_DIR = Path(__file__).resolve().parent.parent
BIN_DIR = Path(sys.executable).parent
STOP_GRACE_SECONDS = 20


def _say(message: str) -> None:
    print(f"==> {message}", flush=True)


def start_embedded_services(stoppers: list[Callable[[], bool]]) -> None:
    """Start the embedded servers the environment asks for, adding to ``stoppers`` how to stop
    each we start before starting it: a failure or a Ctrl-C while the next one starts still
    stops it."""
    if not os.environ.get("DATABASE_URL"):
        if not embedded.postgres_is_running():
            stoppers.append(embedded.stop_postgres)
        embedded.ensure_postgres()
        _say(f"database: embedded PostgreSQL in {embedded.PGDATA_LINK}")
    else:
        _say("database: DATABASE_URL")
    if not os.environ.get("REDIS_URL"):
        if not embedded.valkey_is_running():
            stoppers.append(embedded.stop_valkey)
        _say(f"broker:   embedded Valkey at {embedded.ensure_valkey()}")
    else:
        _say("broker:   REDIS_URL")


def stop_embedded_services(stoppers: list[Callable[[], bool]]) -> None:
    for stop in stoppers:
        stop()


def _manage(*args: str) -> None:
    subprocess.run([sys.executable, str(PROJECT_DIR / "manage.py"), *args], check=True)


def _terminate(processes: list[subprocess.Popen[bytes]]) -> None:
    """Stop each process with its whole group (each was started in a session of its own), the
    group too when the process itself has died: a Celery worker killed outright left its beat
    running, which then sent every periodic task beside the next ``make run``'s beat."""
    for process in processes:
        _group_signalled(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        while _group_signalled(process.pid, 0) and time.monotonic() < deadline:
            time.sleep(0.1)
        _group_signalled(process.pid, signal.SIGKILL)
        process.wait()


def _group_signalled(group: int, signum: int) -> bool:
    """Whether a process of ``group`` was left to send ``signum`` to (0 sends none)."""
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        return False
    return True


def _wait_healthy(url: str, processes: list[subprocess.Popen[bytes]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our http URL)
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    return False


def _reachable_host(host: str) -> str:
    """Where this machine reaches a server bound to ``host``: loopback for every address."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104


def _url_host(host: str) -> str:
    """``host`` as an address and port write it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def _failure(error: Exception) -> str:
    """One line for a failure to start: the embedded servers' reason, or the manage.py command
    that failed (it printed its own reason above)."""
    if isinstance(error, subprocess.CalledProcessError):
        return f"manage.py {error.cmd[2]} failed (exit status {error.returncode})"
    return str(error)


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop(signum)


def run() -> int:
    os.environ.setdefault("DEBUG", "1")
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    stoppers: list[Callable[[], bool]] = []
    processes: list[subprocess.Popen[bytes]] = []
    try:
        start_embedded_services(stoppers)
        _manage("migrate", "--noinput", "-v", "0")
        _manage("bootstrap_dev")
        threads = os.environ.get("GUNICORN_THREADS", "32")
        web = [
            str(BIN_DIR / "gunicorn"), "beemanhoney.wsgi:application",
            "--bind", f"{_url_host(host)}:{port}",
            "--workers", os.environ.get("WEB_CONCURRENCY", "2"),
            "--worker-class", "gthread", "--threads", threads,
            # A worker accepts only what its threads can serve, so a busy one cannot hoard
            # connections while another idles.
            "--worker-connections", threads,
            "--graceful-timeout", "10", "--access-logfile", "-",
        ]  # fmt: skip
        worker = [
            str(BIN_DIR / "celery"), "-A", "beemanhoney", "worker",
            "--loglevel", "INFO", "--concurrency", os.environ.get("CELERY_CONCURRENCY", "2"),
            "--beat", "--schedule", str(embedded.VAR_DIR / "celerybeat-schedule"),
        ]  # fmt: skip
        for command in (web, worker):
            processes.append(subprocess.Popen(command, cwd=PROJECT_DIR, start_new_session=True))
        base = f"http://{_url_host(_reachable_host(host))}:{port}"
        if not _wait_healthy(f"{base}/healthz", processes, timeout=60):
            _say("the stack did not become healthy; stopping")
            return 1
        _say(f"Chat:   {base}/chat/")
        _say(f"API:    {base}/api/docs/  (e.g. {base}/api/products/?q=honey)")
        _say(f"Admin:  {base}/admin/  (login printed above by bootstrap_dev)")
        _say(f"Health: {base}/healthz")
        _say("Press Ctrl-C to stop.")
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        _say("a process exited unexpectedly; stopping the rest")
        return 1
    except _Stop:
        _say("stopping")
        return 0
    except (embedded.EmbeddedServiceError, subprocess.CalledProcessError) as error:
        _say(f"{_failure(error)}; stopping")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _terminate(processes)
        stop_embedded_services(stoppers)
        _say("stopped")


def test(pytest_args: list[str]) -> int:
    # Production settings (DEBUG off), but plain HTTP for the test client and a throwaway key.
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    stoppers: list[Callable[[], bool]] = []
    try:
        start_embedded_services(stoppers)
        return subprocess.run(
            [sys.executable, "-m", "pytest", *pytest_args], cwd=PROJECT_DIR
        ).returncode
    except embedded.EmbeddedServiceError as error:
        _say(_failure(error))
        return 1
    finally:
        stop_embedded_services(stoppers)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test"}:
        print("usage: python -m beemanhoney.devstack run | test [pytest args]", file=sys.stderr)
        return 2
    return run() if argv[0] == "run" else test(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
