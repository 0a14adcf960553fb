"""Capacity benchmark of the live event streams: how many SSE connections one gunicorn holds.

For each gunicorn configuration (``--config WORKERS:THREADS:N,N,...``) and each N, a fresh
``gunicorn beemanhoney.wsgi:application --worker-class gthread`` is started and N streams
``GET /api/runs/{id}/events/`` are opened, one per unfinished (queued) run, spread over several
customers, each with its customer's JWT. Nothing finishes those runs, so every stream stays open.
Then, per N:

- streams whose response headers arrived within 5 s of their request (the rest are queued in
  gunicorn behind busy threads), and how the connections split between the workers;
- delivery latency: ``--rounds`` times, one ``text.delta`` is published to every run with
  ``agents.run_stream.run_event_publish`` carrying its send time; the reader notes when each
  stream receives it (one epoll loop over raw sockets, so the client adds little);
- ``GET /healthz`` and ``GET /api/products/`` while the N streams are open (new connection
  each, 5 s timeout);
- the gunicorn processes' RSS, Redis connections, and Postgres connections of the benchmark's
  database (``pg_stat_activity``), sampled every 25 ms: before the streams, while they open, with
  the streams idle, and while events are delivered; plus the Postgres sessions opened meanwhile
  (``pg_stat_database.sessions``).

Streams are opened at ``--open-rate`` per second and events published at ``--publish-rate`` per
second. The embedded PostgreSQL is shared (``max_connections`` 100) and each stream opens a
database connection when it starts and after each batch of events it delivers, so an unpaced
burst at a few hundred streams would take every connection of the server, other people's test
runs included. The summary reports the peak so the headroom shows; opening and publishing pause
while the server is near its limit, and a level is aborted (and retried once) if it stays there.

A configuration may add ``:wc=N`` (gunicorn ``--worker-connections``), ``:pool=N`` (redis-py's
pool size for gunicorn, as ``?max_connections=N`` on its REDIS_URL: the default of 100 per
process, not the threads, would otherwise cap the streams) and ``:open=`` / ``:publish=`` rates.

Isolation: database ``beemanhoney_bench_streams`` on the embedded PostgreSQL, Redis database 12
of the embedded Valkey; gunicorn binds a free loopback port and is stopped (by its pid, as a
process group) after each N and on exit, also on Ctrl-C/SIGTERM. No Celery worker is needed.

    DEBUG=1 HF_HUB_OFFLINE=1 .venv/bin/python -m bench.streams --markdown

Nothing is asserted: the figures are printed (``--markdown`` for docs/BENCHMARKS.md) and saved as
JSON (``var/bench/streams-results.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import selectors
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beemanhoney.common.ports import free_port
from bench import (
    BENCH_DIR,
    PROJECT_DIR,
    log,
    markdown_table,
    percentile,
    servers_environment,
    text_table,
)
from bench.processes import Stopped, machine, raise_stopped_on_signals

DATABASE = "beemanhoney_bench_streams"
REDIS_DB = 12
CUSTOMERS = 16
HEADER_DEADLINE_S = 5.0
PROBE_TIMEOUT_S = 5.0
FAST_HEALTHZ_MS = 1000.0
# Connections of the shared PostgreSQL left to everyone else: opening streams or publishing
# pauses while the server has fewer free ones than this, and a level is aborted while it has
# fewer than half of them for half a second.
HEADROOM = 30
DEFAULT_CONFIGS = (
    "1:32:31,32,48",  # what `make run` starts: no --workers and WEB_CONCURRENCY unset -> 1 worker
    "2:32:16,32,48,60,64,96",
    # A worker stops accepting once its threads are taken: no stream waits inside a busy
    # worker while the other has free threads (keep-alive is then off: no spare connections).
    "2:32:60,64:wc=32",
    # More threads than redis-py's default pool (100 per process): the streams past 100 fail.
    # Kept to one worker and a few failures: each failed stream keeps a database connection.
    "1:128:96,120",
    # With the pool raised (for gunicorn only: Celery's kombu rejects the URL parameter), threads
    # are the limit again. Slower opening and publishing: with this many threads every request in
    # flight holds a database connection, and the shared server has 100.
    "2:128:128,256,320:pool=1024:open=40:publish=100",
    "2:256:384,512,640:pool=1024:open=40:publish=100",
)
# The text.delta payload carries its sequence number and send time; the reader finds them in the
# raw bytes (chunked framing never splits one yield of the generator).
DELIVERY = re.compile(rb'"bench_seq": (\d+), "bench_sent": ([0-9.]+)')
STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})")


@dataclass(frozen=True)
class Config:
    workers: int
    threads: int
    levels: tuple[int, ...]
    worker_connections: int | None = None  # gunicorn's default: 1000
    # redis-py's pool limit for gunicorn, as ?max_connections= on REDIS_URL (its default: 100)
    redis_pool: int | None = None
    open_rate: float | None = None  # streams opened per second (default: --open-rate)
    publish_rate: float | None = None  # events published per second (default: --publish-rate)

    @property
    def label(self) -> str:
        label = f"{self.workers} x {self.threads}"
        if self.worker_connections:
            label += f", --worker-connections {self.worker_connections}"
        if self.redis_pool:
            label += f", REDIS_URL ?max_connections={self.redis_pool}"
        return label

    @property
    def capacity(self) -> int:
        return self.workers * self.threads


def parse_config(text: str) -> Config:
    """``WORKERS:THREADS:N,N,...``, optionally ``:wc=N:pool=N:open=RATE:publish=RATE``."""
    try:
        workers, threads, levels, *rest = text.split(":")
        options = dict(item.split("=", 1) for item in rest)
        if set(options) - {"wc", "pool", "open", "publish"}:
            raise ValueError
        return Config(
            int(workers),
            int(threads),
            tuple(int(n) for n in levels.split(",")),
            int(options["wc"]) if "wc" in options else None,
            int(options["pool"]) if "pool" in options else None,
            float(options["open"]) if "open" in options else None,
            float(options["publish"]) if "publish" in options else None,
        )
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WORKERS:THREADS:N,N,...[:wc=N][:pool=N][:open=R][:publish=R], got {text!r}"
        ) from None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config",
        type=parse_config,
        action="append",
        help="WORKERS:THREADS:N,N,...[:wc=WORKER_CONNECTIONS][:pool=REDIS_POOL][:open=RATE]"
        f"[:publish=RATE] (repeatable; default {' '.join(DEFAULT_CONFIGS)})",
    )
    parser.add_argument("--rounds", type=int, default=3, help="text.delta events per stream")
    parser.add_argument("--open-rate", type=float, default=100.0, help="new streams per second")
    parser.add_argument("--publish-rate", type=float, default=250.0, help="events per second")
    parser.add_argument("--probes", type=int, default=6, help="/healthz and /api/products/ each")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown block")
    parser.add_argument("--json", type=Path, default=BENCH_DIR / "streams-results.json")
    args = parser.parse_args(argv)
    args.config = args.config or [parse_config(c) for c in DEFAULT_CONFIGS]
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be 1..20")
    return args


# --- machine and processes --------------------------------------------------------------------


def children(parent: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(entry.path, "stat").read_text()
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == parent:
                found.append(int(entry.name))
    return sorted(found)


def proc_status(pid: int, key: str) -> int:
    """A number from /proc/<pid>/status (``VmRSS`` in kB, ``Threads``); 0 once it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def sockets_per_process(pids: Sequence[int], port: int, *, remote: bool = False) -> list[int]:
    """Established TCP connections each process holds with ``port`` as its local end (the
    connections gunicorn accepted) or, with ``remote``, as the far end (its Redis connections).
    """
    inodes: set[str] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        address = cols[2] if remote else cols[1]
        if int(address.split(":")[1], 16) == port and cols[3] == "01":
            inodes.add(cols[9])
    counts = []
    for pid in pids:
        count = 0
        with contextlib.suppress(OSError):
            for fd in os.scandir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(fd.path)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        count += 1
        counts.append(count)
    return counts


class Gunicorn:
    """One gunicorn in its own session, as ``make run`` starts it; stopped by its pid."""

    def __init__(self, config: Config, log_path: Path) -> None:
        self.config = config
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.command = [
            str(Path(sys.executable).parent / "gunicorn"), "beemanhoney.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}", "--worker-class", "gthread",
            "--workers", str(config.workers), "--threads", str(config.threads),
            "--graceful-timeout", "10", "--access-logfile", "-",
        ]  # fmt: skip
        if config.worker_connections:
            self.command += ["--worker-connections", str(config.worker_connections)]

    def env(self) -> dict[str, str]:
        drop = {"WEB_CONCURRENCY", "GUNICORN_THREADS", "LOG_LEVEL", "GUNICORN_CMD_ARGS"}
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update(DEBUG="1", HF_HUB_OFFLINE="1", ALLOWED_HOSTS="127.0.0.1")
        # Hundreds of streams over 16 customers: the per-user cap would refuse all but 64.
        env.update(THROTTLE_READ="1000000/min", SSE_MAX_STREAMS_PER_USER="1000000")
        assert env["DATABASE_URL"].endswith("/" + DATABASE), env["DATABASE_URL"]
        assert env["REDIS_URL"].endswith(f"/{REDIS_DB}"), env["REDIS_URL"]
        if self.config.redis_pool:
            env["REDIS_URL"] += f"?max_connections={self.config.redis_pool}"
        return env

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                self.command,
                cwd=PROJECT_DIR,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited:\n{self.log_tail()}")
            if len(self.workers()) == self.config.workers and probe(self.port, "/healthz")[0]:
                return
            time.sleep(0.25)
        raise SystemExit(f"gunicorn did not answer /healthz:\n{self.log_tail()}")

    def workers(self) -> list[int]:
        return children(self.process.pid) if self.process else []

    def rss_mib(self) -> float:
        if self.process is None:
            return 0.0
        pids = [self.process.pid, *self.workers()]
        return sum(proc_status(pid, "VmRSS") for pid in pids) / 1024

    def log_tail(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-3000:]

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- set-up -----------------------------------------------------------------------------------


@dataclass
class Fixtures:
    runs: list[tuple[str, str]]  # (run id, its customer's bearer token), all queued
    finished: list[tuple[str, str]]  # finished runs with no live events, for the warm-up
    token: str  # any customer's, for /api/products/


def django_setup(count: int) -> Fixtures:
    """Migrate; fresh customers, conversations, messages and queued runs; the demo catalogue."""
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    import django
    from django.core.management import call_command

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone
    from rest_framework_simplejwt.tokens import RefreshToken

    from agents.models import AgentRun
    from catalog import services as catalog_services
    from catalog.models import Product
    from conversations.models import Conversation, Message

    if connection.settings_dict["NAME"] != DATABASE:
        raise SystemExit(f"Django points at {connection.settings_dict['NAME']}; refusing")
    call_command("migrate", verbosity=0)
    user_model = get_user_model()
    with transaction.atomic():
        # This database is the benchmark's own: every run starts from its own customers.
        user_model.objects.filter(username__startswith="bench-streams-").delete()
        users = [
            user_model.objects.create_user(username=f"bench-streams-{i:02d}")
            for i in range(CUSTOMERS)
        ]
        total = count + 4
        conversations = Conversation.objects.bulk_create(
            Conversation(owner=users[i % CUSTOMERS], title=f"stream {i}") for i in range(total)
        )
        messages = Message.objects.bulk_create(
            Message(conversation=c, role=Message.Role.USER, content="Is it in stock?", author=u)
            for c, u in ((c, c.owner) for c in conversations)
        )
        now = timezone.now()
        runs = AgentRun.objects.bulk_create(
            AgentRun(conversation=m.conversation, user_message=m)
            if i < count
            else AgentRun(
                conversation=m.conversation,
                user_message=m,
                status=AgentRun.Status.SUCCEEDED,
                finished_at=now,
            )
            for i, m in enumerate(messages)
        )
    if not Product.objects.exists():
        # The listing needs no embeddings: skip queueing them (no Celery worker here).
        products = json.loads(
            (PROJECT_DIR / "catalog/demo_data/products.json").read_text(encoding="utf-8")
        )
        original = catalog_services.embeddings_refresh_on_commit
        catalog_services.embeddings_refresh_on_commit = lambda **kwargs: None
        try:
            catalog_services.product_import(rows=products)
        finally:
            catalog_services.embeddings_refresh_on_commit = original
    tokens = {u.pk: str(RefreshToken.for_user(u).access_token) for u in users}
    pairs = [(str(r.pk), tokens[r.conversation.owner_id]) for r in runs]
    connection.close()  # this process holds no database connection while measuring
    return Fixtures(runs=pairs[:count], finished=pairs[count:], token=tokens[users[0].pk])


def redis_client() -> Any:
    import redis

    return redis.Redis.from_url(os.environ["REDIS_URL"])


def run_events_clear(client: Any) -> int:
    """Drop every run's live events in database 12 (each N starts with empty streams)."""
    keys = list(client.scan_iter(match="beemanhoney:run-events:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    return len(keys)


# --- Postgres connections -----------------------------------------------------------------------


class PgMonitor(threading.Thread):
    """Samples the benchmark database's connections every 25 ms, with peaks per phase."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.current = 0
        self.peak = 0
        self.server_current = 0
        self.server_peak = 0
        self.pauses = 0
        self.exhausted = threading.Event()
        self._full_since: float | None = None
        self.max_connections = int(self._one("SHOW max_connections")[0])

    def _one(self, sql: str, params: Sequence[object] = ()) -> tuple[Any, ...]:
        row = self.conn.execute(sql, params).fetchone()
        assert row is not None, sql
        return row

    def _sample(self) -> tuple[int, int]:
        mine, server = self._one(
            "SELECT count(*) FILTER (WHERE datname = %s AND pid <> pg_backend_pid()),"
            " count(*) FILTER (WHERE backend_type = 'client backend') FROM pg_stat_activity",
            [DATABASE],
        )
        return int(mine), int(server)

    def run(self) -> None:
        while not self.stopped.wait(0.025):
            mine, server = self._sample()
            with self.lock:
                self.current, self.server_current = mine, server
                self.peak = max(self.peak, mine)
                self.server_peak = max(self.server_peak, server)
            if server > self.max_connections - HEADROOM // 2:
                self._full_since = self._full_since or time.monotonic()
                if time.monotonic() - self._full_since > 0.5:
                    self.exhausted.set()
            else:
                self._full_since = None

    def check(self) -> None:
        """Abort the level while the shared server is about to run out of connections."""
        if self.exhausted.is_set():
            raise LevelAborted(
                f"the shared PostgreSQL had > {self.max_connections - HEADROOM // 2}"
                " client connections"
            )

    def wait_for_headroom(self) -> None:
        """Hold on while the shared server is near ``max_connections`` (others use it too)."""
        self.check()
        limit = self.max_connections - HEADROOM
        if self.server_current <= limit:
            return
        self.pauses += 1
        deadline = time.monotonic() + 5
        while self.server_current > limit:
            self.check()
            if time.monotonic() > deadline:
                raise LevelAborted(f"the shared PostgreSQL stayed above {limit} for 5 s")
            time.sleep(0.01)

    def wait_until_quiet(self, seconds: float) -> None:
        """Until the shared server has had its headroom back for 3 s (or ``seconds`` pass)."""
        deadline = time.monotonic() + seconds
        calm_since = time.monotonic()
        while time.monotonic() < deadline:
            if self.server_current > self.max_connections - HEADROOM:
                calm_since = time.monotonic()
            elif time.monotonic() - calm_since > 3:
                break
            time.sleep(0.1)
        self.exhausted.clear()

    def reset_peak(self) -> None:
        with self.lock:
            self.peak = self.current

    def read_peak(self) -> int:
        with self.lock:
            return self.peak

    def now(self) -> int:
        return self._sample()[0]

    def sessions(self) -> int:
        """Sessions ever opened to the benchmark database (flushed when each one ends)."""
        self.conn.execute("SELECT pg_stat_clear_snapshot()")
        row = self._one("SELECT sessions FROM pg_stat_database WHERE datname = %s", [DATABASE])
        return int(row[0])

    def close(self) -> None:
        self.stopped.set()
        self.join(timeout=2)
        self.conn.close()


def connect_cost_ms(url: str, count: int = 50) -> dict[str, float | int]:
    """What each stream's database check costs now that it reconnects: connect, SELECT, close."""
    import psycopg

    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        with psycopg.connect(url) as conn:
            conn.execute("SELECT 1").fetchone()
        seconds.append(time.perf_counter() - started)
    return ms(seconds)


# --- the streams --------------------------------------------------------------------------------


@dataclass
class Stream:
    run_id: str
    sock: socket.socket
    sent_at: float
    header_at: float | None = None
    status: int | None = None
    closed_at: float | None = None
    error: str = ""
    buf: bytearray = field(default_factory=bytearray)
    received: dict[int, float] = field(default_factory=dict)  # seq -> latency in s

    @property
    def header_s(self) -> float | None:
        return None if self.header_at is None else self.header_at - self.sent_at


class Reader(threading.Thread):
    """One epoll loop over every stream socket: timestamps headers and deliveries."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.selector = selectors.DefaultSelector()
        self.stopped = threading.Event()
        self.streams: list[Stream] = []

    def open(self, port: int, run_id: str, token: str) -> None:
        sent_at = time.time()
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(
                f"GET /api/runs/{run_id}/events/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
            )
            sock.setblocking(False)
        except OSError as exc:
            stream = Stream(run_id, socket.socket(), sent_at, error=type(exc).__name__)
            self.streams.append(stream)
            return
        stream = Stream(run_id, sock, sent_at)
        self.streams.append(stream)
        self.selector.register(sock, selectors.EVENT_READ, stream)

    def run(self) -> None:
        while not self.stopped.is_set():
            for key, _ in self.selector.select(timeout=0.1):
                self._read(key.data)

    def _read(self, stream: Stream) -> None:
        try:
            chunk = stream.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            chunk, stream.error = b"", type(exc).__name__
        now = time.time()
        if not chunk:
            stream.closed_at = now
            self.selector.unregister(stream.sock)
            return
        stream.buf += chunk
        if stream.header_at is None:
            end = stream.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            stream.header_at = now
            status = STATUS_LINE.match(stream.buf)
            stream.status = int(status.group(1)) if status else 0
            del stream.buf[: end + 4]
        last = 0
        for match in DELIVERY.finditer(stream.buf):
            stream.received[int(match.group(1))] = now - float(match.group(2))
            last = match.end()
        del stream.buf[:last]
        if len(stream.buf) > 16384:
            del stream.buf[:-1024]

    def close(self) -> None:
        self.stopped.set()
        self.join(timeout=2)
        for stream in self.streams:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(stream.sock)
            stream.sock.close()
        self.selector.close()


def probe(port: int, path: str, token: str | None = None) -> tuple[bool, float, str]:
    """One request on a new connection: (answered 200, seconds, status or error)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT_S)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status == 200, time.perf_counter() - started, str(response.status)
    except (OSError, http.client.HTTPException) as exc:
        return False, time.perf_counter() - started, type(exc).__name__
    finally:
        conn.close()


def probe_loop(port: int, path: str, token: str | None, count: int, deadline: float) -> list:
    results: list[Any] = []
    while len(results) < count and time.monotonic() < deadline:
        results.append(probe(port, path, token))
    return results


def paced(items: Sequence[Any], rate: float) -> Any:
    """Yield the items at ``rate`` per second (the i-th no earlier than start + i / rate)."""
    start = time.monotonic()
    for index, item in enumerate(items):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield item


# --- one level ----------------------------------------------------------------------------------


def ms(seconds: Sequence[float]) -> dict[str, float | int]:
    values = [s * 1000 for s in seconds]
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "max": round(max(values), 1) if values else float("nan"),
    }


def probe_summary(results: list[tuple[bool, float, str]]) -> dict[str, Any]:
    ok = [seconds for good, seconds, _ in results if good]
    failures: dict[str, int] = {}
    for good, _, status in results:
        if not good:
            failures[status] = failures.get(status, 0) + 1
    return {"sent": len(results), "ok": len(ok), "ms": ms(ok), "failures": failures}


class LevelAborted(Exception):
    pass


def level_defaults(config: Config, n: int) -> dict[str, Any]:
    return {
        "config": config.label,
        "workers": config.workers,
        "threads": config.threads,
        "worker_connections": config.worker_connections,
        "redis_pool": config.redis_pool,
        "capacity": config.capacity,
        "n": n,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "aborted": "",
        "served": 0,
        "statuses": {},
        "header_ms": ms([]),
        "per_worker": [],
        "threads_base": [],
        "threads_open": [],
        "rss_base_mib": None,
        "rss_open_mib": None,
        "rss_after_mib": None,
        "pg_base": None,
        "pg_open_peak": None,
        "pg_idle": None,
        "pg_delivery_peak": None,
        "redis_clients": None,
        "sessions_open": None,
        "sessions_delivery": None,
        "healthz": probe_summary([]),
        "products": probe_summary([]),
        "expected": 0,
        "delivered": 0,
        "delivery_ms": ms([]),
        "no_headers": 0,
        "failed_streams": 0,
    }


def run_level(
    *,
    args: argparse.Namespace,
    config: Config,
    n: int,
    fixtures: Fixtures,
    monitor: PgMonitor,
    redis: Any,
    log_path: Path,
) -> dict[str, Any]:
    runs = fixtures.runs[:n]
    run_events_clear(redis)
    gunicorn = Gunicorn(config, log_path)
    reader = Reader()
    result = level_defaults(config, n)
    monitor.exhausted.clear()
    log_offset = log_path.stat().st_size if log_path.exists() else 0
    try:
        gunicorn.start()
        measure_level(args, result, gunicorn, reader, runs, fixtures, monitor)
    except LevelAborted as exc:
        result["aborted"] = str(exc)
        log(f"  aborted: {exc}")
    finally:
        reader.close()
        if result["aborted"] or result["no_headers"] or result["served"] < n:
            gunicorn.kill()  # its connections go now, and no queued stream starts on the way out
        gunicorn.stop()
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["server_errors"] = server_errors(log_path, log_offset)
    served = result["served"]
    result["rss_per_stream_kib"] = (
        round((result["rss_open_mib"] - result["rss_base_mib"]) * 1024 / served, 1)
        if served and result["rss_open_mib"] is not None
        else None
    )
    problems = [f"aborted: {result['aborted']}"] if result["aborted"] else []
    if result["no_headers"]:
        problems.append(f"{result['no_headers']} streams queued (no headers)")
    if result["failed_streams"]:
        problems.append(f"{result['failed_streams']} streams closed by the server")
    if result["delivered"] < result["expected"]:
        problems.append(f"{result['expected'] - result['delivered']} events missing")
    if result["server_errors"]:
        problems.append(f"{sum(result['server_errors'].values())} server exceptions")
    healthz = result["healthz"]
    if healthz["ok"] < healthz["sent"] or not healthz["sent"]:
        problems.append(f"/healthz {healthz['sent'] - healthz['ok']}/{healthz['sent']} timed out")
    elif healthz["ms"]["p95"] >= FAST_HEALTHZ_MS:
        problems.append("/healthz slow")
    result["problems"] = problems
    result["ok"] = not problems and served == n
    return result


def measure_level(
    args: argparse.Namespace,
    result: dict[str, Any],
    gunicorn: Gunicorn,
    reader: Reader,
    runs: list[tuple[str, str]],
    fixtures: Fixtures,
    monitor: PgMonitor,
) -> None:
    from agents.run_stream import run_event_publish

    # Warm both workers: imports, URL resolvers, the SSE view (a finished run replays and ends).
    for _ in range(6):
        probe(gunicorn.port, "/healthz")
        probe(gunicorn.port, "/api/products/", fixtures.token)
    for run_id, token in fixtures.finished:
        probe(gunicorn.port, f"/api/runs/{run_id}/events/", token)
    time.sleep(1.0)
    workers = gunicorn.workers()
    result["rss_base_mib"] = round(gunicorn.rss_mib(), 1)
    result["threads_base"] = [proc_status(pid, "Threads") for pid in workers]
    result["pg_base"] = monitor.now()
    sessions_before_open = monitor.sessions()

    # 1. open the N streams
    reader.start()
    monitor.reset_peak()
    open_rate = gunicorn.config.open_rate or args.open_rate
    publish_rate = gunicorn.config.publish_rate or args.publish_rate
    result.update(open_rate=open_rate, publish_rate=publish_rate)
    for run_id, token in paced(runs, open_rate):
        monitor.wait_for_headroom()
        reader.open(gunicorn.port, run_id, token)
    deadline = time.time() + HEADER_DEADLINE_S
    while time.time() < deadline and any(s.header_at is None for s in reader.streams):
        monitor.check()
        time.sleep(0.05)
    time.sleep(1.0)  # served streams finish their first database check and block on Redis
    streams = reader.streams
    served = [
        s
        for s in streams
        if s.status == 200
        and s.header_s is not None
        and s.header_s <= HEADER_DEADLINE_S
        and s.closed_at is None
    ]
    statuses: dict[str, int] = {}
    for s in streams:
        key = str(s.status) if s.status is not None else (s.error or "no headers")
        statuses[key] = statuses.get(key, 0) + 1
    result.update(
        served=len(served),
        statuses=statuses,
        header_ms=ms([s.header_s for s in served if s.header_s is not None]),
        per_worker=sockets_per_process(workers, gunicorn.port),
        threads_open=[proc_status(pid, "Threads") for pid in workers],
        pg_open_peak=monitor.read_peak(),
    )
    time.sleep(0.5)
    result["pg_idle"] = monitor.now()
    result["rss_open_mib"] = round(gunicorn.rss_mib(), 1)
    redis_port = int(re.sub(r"/\d+$", "", os.environ["REDIS_URL"]).rsplit(":", 1)[1])
    result["redis_clients"] = sum(sockets_per_process(workers, redis_port, remote=True))
    result["sessions_open"] = monitor.sessions() - sessions_before_open

    # 2. /healthz and /api/products/ while the streams are open (and idle)
    monitor.check()
    probe_deadline = time.monotonic() + 2 * PROBE_TIMEOUT_S + 1
    box: dict[str, list] = {}
    health = threading.Thread(
        target=lambda: box.update(
            h=probe_loop(gunicorn.port, "/healthz", None, args.probes, probe_deadline)
        )
    )
    health.start()
    box["p"] = probe_loop(
        gunicorn.port, "/api/products/", fixtures.token, args.probes, probe_deadline
    )
    health.join(timeout=PROBE_TIMEOUT_S + 15)
    result["healthz"] = probe_summary(box.get("h", []))
    result["products"] = probe_summary(box.get("p", []))

    # 3. deliveries: one text.delta to every run, per round
    time.sleep(0.5)
    sessions_before = monitor.sessions()
    monitor.reset_peak()
    for seq in range(1, args.rounds + 1):
        for run_id, _ in paced(runs, publish_rate):
            monitor.wait_for_headroom()
            run_event_publish(
                run_id=run_id,
                type="text.delta",
                data={"delta": ".", "bench_seq": seq, "bench_sent": time.time()},
            )
        wait_until = time.monotonic() + 3.0
        while time.monotonic() < wait_until and any(
            seq not in s.received and s.closed_at is None for s in served
        ):
            monitor.check()
            time.sleep(0.02)
    result["pg_delivery_peak"] = monitor.read_peak()
    time.sleep(0.6)  # let the short sessions end, so their count is flushed
    latencies = [v for s in served for v in s.received.values()]
    result.update(
        expected=len(served) * args.rounds,
        delivered=len(latencies),
        delivery_ms=ms(latencies),
        sessions_delivery=monitor.sessions() - sessions_before,
        rss_after_mib=round(gunicorn.rss_mib(), 1),
        no_headers=sum(1 for s in streams if s.header_at is None),
        failed_streams=sum(1 for s in streams if s.closed_at is not None),
    )

    # 4. end every stream: a final event, so no thread stays blocked while gunicorn stops.
    # Not with queued streams: freed threads would run them (clients gone or not), each taking
    # a database connection that CONN_MAX_AGE keeps; gunicorn is killed instead (run_level).
    if result["no_headers"]:
        return
    for run_id, _ in paced(runs, 2000):
        run_event_publish(run_id=run_id, type="run.cancelled", data={"status": "cancelled"})
    time.sleep(1.0)


# --- report -------------------------------------------------------------------------------------


def num(value: float | None, digits: int = 0) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.{digits}f}"


def probe_cell(summary: dict[str, Any]) -> str:
    cell = f"{summary['ok']}/{summary['sent']}"
    if summary["ok"]:
        cell += f" ({summary['ms']['p50']:.0f} / {summary['ms']['max']:.0f})"
    return cell


def level_rows(levels: list[dict[str, Any]]) -> tuple[list[str], list[list[object]]]:
    headers = [
        "gunicorn", "N", "served ≤5 s", "per worker", "delivered",
        "delivery p50 / p95 ms", "/healthz ok (p50 / max ms)", "/api/products/ ok (p50 / max ms)",
        "RSS MiB base → open", "PG conns base / open peak / idle / delivery peak",
        "PG sessions per event", "verdict",
    ]  # fmt: skip
    rows: list[list[object]] = []
    for lv in levels:
        sessions = lv["sessions_delivery"]
        per_event = sessions / lv["delivered"] if lv["delivered"] and sessions is not None else None
        pg = (lv["pg_base"], lv["pg_open_peak"], lv["pg_idle"], lv["pg_delivery_peak"])
        rows.append([
            lv["config"], lv["n"], f"{lv['served']}/{lv['n']}",
            "/".join(str(c) for c in lv["per_worker"]) or "-",
            f"{lv['delivered']}/{lv['expected']}",
            f"{num(lv['delivery_ms']['p50'], 1)} / {num(lv['delivery_ms']['p95'], 1)}",
            probe_cell(lv["healthz"]), probe_cell(lv["products"]),
            f"{num(lv['rss_base_mib'])} → {num(lv['rss_open_mib'])}",
            " / ".join(num(x) for x in pg), num(per_event, 2), "; ".join(lv["problems"]) or "ok",
        ])  # fmt: skip
    return headers, rows


def capacity_rows(results: dict[str, Any]) -> tuple[list[str], list[list[object]]]:
    headers = [
        "gunicorn", "workers x threads (streams)", "largest N fully served",
        "smallest N failing", "RSS per open stream KiB (median)",
    ]  # fmt: skip
    rows: list[list[object]] = []
    for key, levels in group_by_config(results["levels"]).items():
        good = [lv["n"] for lv in levels if lv["ok"]]
        bad = [lv["n"] for lv in levels if not lv["ok"]]
        per_stream = sorted(
            lv["rss_per_stream_kib"] for lv in levels if lv["rss_per_stream_kib"] and lv["n"] >= 32
        )
        rows.append([
            key, levels[0]["capacity"], max(good) if good else "none",
            min(bad) if bad else "none tried",
            f"{per_stream[len(per_stream) // 2]:.0f}" if per_stream else "n/a",
        ])  # fmt: skip
    return headers, rows


def group_by_config(levels: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for lv in levels:
        groups.setdefault(lv["config"], []).append(lv)
    return groups


def report(results: dict[str, Any], *, markdown: bool) -> None:
    m = results["machine"]
    print(f"\nmachine: {m['nproc']} cores, {m['cpu']}, {m['ram_gib']} GiB; {m['date']}")
    print(f"command: {results['command']}")
    print(f"gunicorn: {results['gunicorn']}")
    print(
        f"Postgres max_connections {results['max_connections']}; peak client connections on "
        f"the whole (shared) server during the run: {results['server_peak_connections']} "
        f"(paused {results['headroom_pauses']} times for headroom)"
    )
    cost = results["connect_cost_ms"]
    print(
        f"one Postgres connect + SELECT 1 + close (what a stream does per wake-up): "
        f"p50 {cost['p50']} ms, p95 {cost['p95']} ms\n"
    )
    tables = (level_rows(results["levels"]), capacity_rows(results))
    for headers, rows in tables:
        print(text_table(headers, rows))
        print()
    for lv in results["levels"]:
        extras = {
            "statuses": lv["statuses"],
            "no headers": lv["no_headers"],
            "closed by server": lv["failed_streams"],
            "header ms": lv["header_ms"],
            "threads base→open": f"{lv['threads_base']}→{lv['threads_open']}",
            "redis conns": lv["redis_clients"],
            "attempts": lv.get("attempts", 1),
            "PG sessions open/delivery": f"{lv['sessions_open']}/{lv['sessions_delivery']}",
            "healthz failures": lv["healthz"]["failures"],
            "products failures": lv["products"]["failures"],
            "server exceptions": lv["server_errors"],
            "load": f"{lv['load_average_before'][0]}→{lv['load_average_after'][0]}",
        }
        print(f"{lv['config']}, N={lv['n']}: {json.dumps(extras, ensure_ascii=False)}")
    if markdown:
        print("\n<!-- markdown -->")
        for headers, rows in tables:
            print(markdown_table(headers, rows))
            print()


EXCEPTION_LINE = re.compile(r"^([\w.]+(?:Error|Exception)): (.*)$")


def server_errors(path: Path, offset: int) -> dict[str, int]:
    """Exceptions gunicorn logged from ``offset`` on, by type and message (first 80 chars)."""
    with path.open("rb") as log_file:
        log_file.seek(offset)
        text = log_file.read().decode(errors="replace")
    counts: dict[str, int] = {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = EXCEPTION_LINE.match(line)
        chained = any(
            next_line.startswith("During handling") for next_line in lines[index + 1 : index + 3]
        )
        if match and not chained:
            key = f"{match.group(1)}: {match.group(2)[:80]}"
            counts[key] = counts.get(key, 0) + 1
    return counts


# --- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = "DEBUG=1 HF_HUB_OFFLINE=1 .venv/bin/python -m bench.streams " + shlex.join(
        sys.argv[1:] if argv is None else list(argv)
    )
    raise_stopped_on_signals()
    env = servers_environment(DATABASE, redis_db=REDIS_DB)
    most = max(n for config in args.config for n in config.levels)
    log(f"database {DATABASE}, redis db {REDIS_DB}; creating {most} queued runs")
    fixtures = django_setup(most)
    redis = redis_client()
    monitor = PgMonitor(env["database_url"])
    monitor.start()
    log_path = BENCH_DIR / "logs" / "streams-gunicorn.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_bytes(b"")
    results: dict[str, Any] = {
        "machine": machine(),
        "command": command.strip(),
        "gunicorn": "gunicorn beemanhoney.wsgi:application --worker-class gthread --workers W "
        "--threads T --graceful-timeout 10 --access-logfile - (DEBUG=1, "
        "ALLOWED_HOSTS=127.0.0.1, THROTTLE_READ=1000000/min, SSE_MAX_STREAMS_PER_USER=1000000, "
        "defaults otherwise)",
        "settings": {},
        "max_connections": monitor.max_connections,
        "levels": [],
    }
    from django.conf import settings

    results["settings"] = {
        "SSE_HEARTBEAT_SECONDS": settings.SSE_HEARTBEAT_SECONDS,
        "SSE_MAX_STREAM_SECONDS": settings.SSE_MAX_STREAM_SECONDS,
        "CONN_MAX_AGE": settings.DATABASES["default"]["CONN_MAX_AGE"],
    }
    results["connect_cost_ms"] = connect_cost_ms(env["database_url"])
    started = time.monotonic()
    try:
        for config in args.config:
            for n in config.levels:
                log(f"{config.label}: N = {n}")
                for attempt in (1, 2):
                    level = run_level(
                        args=args,
                        config=config,
                        n=n,
                        fixtures=fixtures,
                        monitor=monitor,
                        redis=redis,
                        log_path=log_path,
                    )
                    if not level["aborted"] or attempt == 2:
                        break
                    log("  the shared PostgreSQL is busy: waiting for it, then again")
                    monitor.wait_until_quiet(seconds=90)
                level["attempts"] = attempt
                results["levels"].append(level)
                log(
                    f"  served {level['served']}/{n}, delivered {level['delivered']}/"
                    f"{level['expected']}, healthz {level['healthz']['ok']}/"
                    f"{level['healthz']['sent']}, PG delivery peak {level['pg_delivery_peak']}"
                )
    except Stopped:
        log("interrupted; stopping what was started")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        results["server_peak_connections"] = monitor.server_peak
        results["headroom_pauses"] = monitor.pauses
        monitor.close()
        with contextlib.suppress(Exception):
            run_events_clear(redis)
    results["seconds"] = round(time.monotonic() - started, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
    report(results, markdown=args.markdown)
    log(f"saved {args.json} after {results['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
