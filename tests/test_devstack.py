import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beemanhoney import devstack

# A process that starts a child in its own process group, prints the child's pid and dies:
# the child stays, as a Celery worker's beat did when the worker was killed outright.
LEADER_LEAVING_A_CHILD = (
    "import subprocess, sys;"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']);"
    "print(child.pid, flush=True)"
)


def _alive(pid: int) -> bool:
    """Running, not exited: an exited process waits as a zombie until its parent reaps it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_stopping_the_stack_stops_what_a_dead_process_left_in_its_group() -> None:
    leader = subprocess.Popen(
        [sys.executable, "-c", LEADER_LEAVING_A_CHILD],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert leader.stdout is not None
    child = int(leader.stdout.readline())
    leader.wait(timeout=10)
    assert _alive(child)

    try:
        devstack._terminate([leader])
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)

        assert not _alive(child)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader.pid, signal.SIGKILL)


def _devstack(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "beemanhoney.devstack", command],
        cwd=devstack.PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_run_whose_migrate_fails_says_so_in_one_line_and_stops() -> None:
    # Given servers (nothing embedded to start), and a setting manage.py refuses in one line.
    given = {
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "DEBUG": "2",
    }

    result = _devstack("run", {**os.environ, **given})

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "==> manage.py migrate failed (exit status 1); stopping" in result.stdout


@pytest.mark.parametrize("command", ["run", "test"])
def test_embedded_servers_that_cannot_start_are_reported_in_one_line(
    tmp_path: Path, command: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env |= {"BEEMAN_VAR_DIR": str(tmp_path), "EMBEDDED_POSTGRES_VERSION": "17"}

    result = _devstack(command, env)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "==> EMBEDDED_POSTGRES_VERSION must be one of [16, 18], not '17'" in result.stdout


@pytest.mark.parametrize(
    ("host", "bound", "reached"),
    [
        ("127.0.0.1", "127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", "0.0.0.0", "127.0.0.1"),  # noqa: S104
        ("::", "[::]", "[::1]"),
        ("::1", "[::1]", "[::1]"),
    ],
)
def test_the_stack_binds_and_checks_an_ipv6_host_in_brackets(
    host: str, bound: str, reached: str
) -> None:
    assert devstack._url_host(host) == bound
    assert devstack._url_host(devstack._reachable_host(host)) == reached
