"""The machine, processes, ports and signals: what the load, turns and streams benchmarks share."""

from __future__ import annotations

import os
import platform
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import log

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Other benchmarks and test runs, whose whole process tree counts as one load.
HEAVY_COMMAND = re.compile(r"bench[/.]|pytest|warm_cache")
# Test runs count as long as they run: a suite has quiet seconds (waiting on its servers and
# workers) between busy ones, and a benchmark that started in one measured beside the rest.
TEST_RUN_COMMAND = re.compile(r"pytest")
BUSY_CORES = 0.25  # a process using more than this share of a core counts as load


def machine() -> dict[str, Any]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "date": subprocess.run(["date"], capture_output=True, text=True).stdout.strip(),
    }


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    cpu_s: float
    command: str


def proc_table() -> dict[int, Proc]:
    table: dict[int, Proc] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            raw = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
        table[int(entry.name)] = Proc(int(entry.name), int(fields[1]), cpu, command)
    return table


def descendants(table: dict[int, Proc], root: int) -> set[int]:
    found = {root}
    changed = True
    while changed:
        changed = False
        for proc in table.values():
            if proc.ppid in found and proc.pid not in found:
                found.add(proc.pid)
                changed = True
    return found


def ancestors(table: dict[int, Proc], pid: int) -> set[int]:
    found: set[int] = set()
    while pid in table and pid not in found and pid > 1:
        found.add(pid)
        pid = table[pid].ppid
    return found


def is_foreign(proc: Proc, mine: set[int], *, database: str) -> bool:
    """Neither this benchmark's processes (``mine``, its ``database``'s sessions) nor the
    servers every process shares."""
    if proc.pid in mine or not proc.command:
        return False
    if database in proc.command or "valkey" in proc.command:
        return False
    # The postmaster and its helpers (checkpointer, walwriter...) serve every database.
    return not (proc.command.startswith("postgres") and "[local]" not in proc.command)


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (every process, the kernel, steal)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def own_cpu_s() -> float:
    """This process and its reaped children (stopped workers, gunicorn)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def heavy_processes(*, database: str, sample_s: float = 5.0) -> list[str]:
    """Other benchmarks or test runs that are working, and any foreign process keeping a core
    busy; ``database`` is this benchmark's own (its sessions are not load).

    A benchmark or test run counts with the CPU of its whole process tree (its workers, its
    servers); a benchmark only waiting for the machine to be quiet, as this one does, does not,
    or two benchmarks would wait for each other. A test run counts busy or not.
    """
    before, machine_before, own_before = proc_table(), machine_busy_s(), own_cpu_s()
    time.sleep(sample_s)
    after = proc_table()
    other = (machine_busy_s() - machine_before - (own_cpu_s() - own_before)) / sample_s
    mine = descendants(after, os.getpid()) | ancestors(after, os.getpid())

    def cores(pids: set[int]) -> float:
        used = sum(after[p].cpu_s - before[p].cpu_s for p in pids if p in before and p in after)
        return used / sample_s

    heavy: dict[int, str] = {}
    for proc in after.values():
        if not is_foreign(proc, mine, database=database):
            continue
        named = HEAVY_COMMAND.search(proc.command) and "grep" not in proc.command
        used = cores(descendants(after, proc.pid)) if named else cores({proc.pid})
        if used > BUSY_CORES or (named and TEST_RUN_COMMAND.search(proc.command)):
            heavy[proc.pid] = f"{proc.pid} {proc.command[:90]} ({used:.2f} cores)"
    # A tree counts once, at its top: drop busy processes whose ancestor is already listed.
    tops = {pid: text for pid, text in heavy.items()
            if not (ancestors(after, after[pid].ppid) & set(heavy))}  # fmt: skip
    if other > 2 * BUSY_CORES:
        tops[0] = f"the machine: {other:.2f} cores busy besides this benchmark"
    return sorted(tops.values())


def wait_until_quiet(minutes: float, *, database: str) -> tuple[bool, list[str]]:
    """Whether the machine became quiet within ``minutes`` (``heavy_processes``), and what
    kept it busy if not: the benchmark measures anyway, and says so."""
    deadline = time.monotonic() + minutes * 60
    while True:
        heavy = heavy_processes(database=database)
        if not heavy:
            return True, []
        if time.monotonic() > deadline:
            log("the machine did not become quiet; measuring anyway: " + "; ".join(heavy))
            return False, heavy
        log("machine busy, waiting 30 s: " + "; ".join(heavy))
        time.sleep(30)


class Stopped(Exception):
    """SIGTERM or SIGINT arrived: the benchmark stops what it started and exits."""


def _raise_stopped(signum: int, frame: object) -> None:
    raise Stopped(signum)


def raise_stopped_on_signals() -> None:
    signal.signal(signal.SIGTERM, _raise_stopped)
    signal.signal(signal.SIGINT, _raise_stopped)
