import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
