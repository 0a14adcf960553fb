"""The machine, processes, ports and signals: what the load, turns and streams benchmarks share."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


class Stopped(Exception):
    """SIGTERM or SIGINT arrived: the benchmark stops what it started and exits."""


def _raise_stopped(signum: int, frame: object) -> None:
    raise Stopped(signum)


def raise_stopped_on_signals() -> None:
    signal.signal(signal.SIGTERM, _raise_stopped)
    signal.signal(signal.SIGINT, _raise_stopped)
