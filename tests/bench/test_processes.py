import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bench import wait_for_quiet
from bench.processes import heavy_processes

BUSY_LOOP = [sys.executable, "-c", "while True: pass"]
# The last argument names what the idle process stands for in its command line.
IDLE = [sys.executable, "-c", "import time; time.sleep(120)"]


@contextmanager
def foreign_process(command: list[str]) -> Iterator[int]:
    """``command`` outside this process's tree: started through a shell that exits at once, so
    that it is reparented, as another user's job would be."""
    shell = subprocess.run(
        ["sh", "-c", '"$@" >/dev/null 2>&1 & echo $!', "sh", *command],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(shell.stdout.strip())
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def foreign_busy_pid() -> Iterator[int]:
    with foreign_process(BUSY_LOOP) as pid:
        yield pid


def test_a_busy_process_outside_the_benchmark_is_load(foreign_busy_pid: int) -> None:
    heavy = heavy_processes(database="beemanhoney_bench", sample_s=1.0)

    assert any(line.startswith(f"{foreign_busy_pid} ") for line in heavy), heavy


def test_the_benchmarks_own_busy_children_are_not_load() -> None:
    child = subprocess.Popen(BUSY_LOOP)
    try:
        heavy = heavy_processes(database="beemanhoney_bench", sample_s=1.0)
    finally:
        child.kill()
        child.wait()

    assert not any(line.startswith(f"{child.pid} ") for line in heavy), heavy


def test_waiting_for_quiet_gives_up_after_its_minutes_and_says_what_was_busy(
    foreign_busy_pid: int, capsys: pytest.CaptureFixture[str]
) -> None:
    load_average = wait_for_quiet(0.01)

    assert len(load_average) == 3
    progress = capsys.readouterr().err
    assert "did not become quiet" in progress
    assert f"{foreign_busy_pid} " in progress


def test_a_test_run_is_load_even_in_its_idle_seconds() -> None:
    with foreign_process([*IDLE, "pytest"]) as pid:
        heavy = heavy_processes(database="beemanhoney_bench", sample_s=1.0)

    assert any(line.startswith(f"{pid} ") for line in heavy), heavy


def test_an_idle_benchmark_is_not_load() -> None:
    # Another benchmark waiting for the machine to be quiet: counting it would deadlock the two.
    with foreign_process([*IDLE, "bench.search"]) as pid:
        heavy = heavy_processes(database="beemanhoney_bench", sample_s=1.0)

    assert not any(line.startswith(f"{pid} ") for line in heavy), heavy
