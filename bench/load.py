"""Load benchmark: many concurrent customers against gunicorn + a Celery worker, offline model.

Each simulated customer does what the chat widget does: ``POST /api/auth/guest/``, ``POST
/api/conversations/``, then M messages, each a ``POST /api/conversations/{id}/messages/`` (timed:
the POST latency) followed by ``GET /api/runs/{id}/?wait=25`` long-polls until the run is final
(timed from the POST's start: the full turn), with a random think time between messages. N
customers run at once, one thread and one keep-alive ``http.client`` connection each.

Reported per level of concurrency: requests and errors, POST and full-turn p50/p95/p99, turns/s,
where the turn's time went on the server (from the ``AgentRun`` timestamps: waiting for a worker
versus running the graph), the broker queue's peak, the time for the broker queue and the
unfinished runs to fall back to zero once the load stops, and the CPU each group of processes
used (so a noisy machine shows itself).

Isolation: database ``beemanhoney_bench_load`` on the embedded PostgreSQL, Redis database 13 of
the embedded Valkey and a Celery queue of its own (``bench-load-<random>``), so nothing else
consumes its tasks. Every process it starts is stopped on exit by its pid, also on Ctrl-C/SIGTERM.

    DEBUG=1 HF_HUB_OFFLINE=1 .venv/bin/python -m bench.load --customers 40 80 --markdown

Nothing is asserted: the figures are printed (``--markdown`` for docs/BENCHMARKS.md) and saved as
JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from beemanhoney.common.ports import free_port
from bench import (
    BENCH_DIR,
    PROJECT_DIR,
    THROTTLES_LIFTED,
    conversations_django_setup,
    log,
    markdown_table,
    percentile,
    servers_environment,
    text_table,
)
from bench.processes import (
    BUSY_CORES,
    Proc,
    Stopped,
    ancestors,
    descendants,
    heavy_processes,
    machine,
    proc_table,
    raise_stopped_on_signals,
    wait_until_quiet,
)

DATABASE = "beemanhoney_bench_load"
# Not 14 or 15: the test suite uses those (its cache and broker) and empties them per test.
REDIS_DB = 13
TARGET_ERROR_RATE = 0.01
TARGET_POST_P95_MS = 300.0
FINAL = frozenset({"succeeded", "failed", "cancelled"})
# kombu's Redis transport keeps priorities 3, 6 and 9 in sibling lists named "<queue>\x06\x16<p>".
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--customers", type=int, nargs="+", default=[40], help="concurrent customers, per level"
    )
    parser.add_argument("--messages", type=int, default=5, help="messages per customer")
    parser.add_argument("--think-min", type=float, default=0.5, help="seconds between messages")
    parser.add_argument("--think-max", type=float, default=1.5)
    parser.add_argument("--ramp", type=float, default=2.0, help="customers arrive over this")
    parser.add_argument("--wait", type=int, default=25, help="?wait= of each long-poll (max 25)")
    parser.add_argument("--turn-timeout", type=float, default=60.0, help="a customer gives up")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="cap on one level")
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn --workers")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn --threads")
    parser.add_argument("--concurrency", type=int, default=2, help="celery --concurrency")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--wait-quiet-minutes",
        type=float,
        default=20,
        help="wait (polling every 30 s) this long for other benchmarks or test runs to finish",
    )
    parser.add_argument("--markdown", action="store_true", help="also print a markdown block")
    parser.add_argument("--json", type=Path, default=BENCH_DIR / "load-results.json")
    args = parser.parse_args(argv)
    if not 0 < args.wait <= 25:
        parser.error("--wait must be 1..25 (the server caps it at RUN_WAIT_MAX_SECONDS)")
    return args


# --- what customers ask -----------------------------------------------------------------------

KINDS = (
    "manuka honey", "raw honey", "creamed honey", "heather honey", "acacia honey", "clover honey",
    "lavender honey", "buckwheat honey", "honeycomb", "set honey", "chilli honey",
    "wildflower honey", "beeswax candles", "beeswax wraps", "bee pollen", "propolis",
    "honey gift set", "orange blossom honey", "forest honey", "thyme honey",
)  # fmt: skip
USES = (
    "my morning tea", "porridge", "baking bread", "a cheese board", "a sore throat", "pancakes",
    "glazing a ham", "salad dressings", "Greek yoghurt", "toast", "marinades", "cocktails",
    "roast parsnips", "smoothies", "hot toddies", "flapjacks",
)  # fmt: skip
FLAVOURS = ("mild", "dark", "floral", "robust", "creamy", "runny", "smoky", "fruity", "light")
PEOPLE = ("mum", "dad", "gran", "boss", "neighbour", "teacher", "sister", "best friend")
PLACES = (
    "Leeds", "Belfast", "Cornwall", "the Isle of Wight", "France", "Germany", "Edinburgh",
    "Cardiff", "the Highlands", "Dublin", "Spain", "Norway",
)  # fmt: skip
WHEN = ("last week", "yesterday", "on Monday", "ten days ago", "on Friday", "this morning")
PRODUCT_QUESTIONS = (
    "Do you have a {flavour} honey that's good for {use}?",
    "I'm looking for {kind} for {use}, ideally under £{price}.",
    "What {kind} would you recommend as a present for my {person}?",
    "Is the {kind} in stock? I'd like two jars.",
    "Which of your honeys goes best with {use}? Something {flavour}.",
    "How much is your {kind}, and what sizes does it come in?",
    "I need a birthday gift for my {person} under £{price}, maybe {kind}?",
    "What's the difference between your {kind} and the {other}?",
)
SUPPORT_QUESTIONS = (
    "How long does delivery to {place} take?",
    "How much is shipping to {place} for a jar of {kind}?",
    "Can I return an opened jar of {kind} I bought {when}?",
    "My {kind} arrived {when} and the jar was cracked, what should I do?",
    "My {kind} has gone solid and grainy, is it still okay to eat?",
    "How should I store {kind} once it's open?",
    "Is it safe to give {kind} to my {months}-month-old?",
    "When will my refund for the {kind} I sent back {when} arrive?",
    "How do I track the order I placed {when}?",
    "Is your {kind} safe if I have a pollen allergy?",
)


class Questions:
    """Distinct product (60%) and support (40%) questions, never repeated within a run.

    Distinct so that no turn is answered faster thanks to a worker's query-embedding cache.
    """

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"beeman-bench-load:{seed}")
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def take(self, count: int) -> list[str]:
        with self._lock:
            texts: list[str] = []
            while len(texts) < count:
                pool = PRODUCT_QUESTIONS if self._rng.random() < 0.6 else SUPPORT_QUESTIONS
                kind, other = self._rng.sample(KINDS, 2)
                text = self._rng.choice(pool).format(
                    kind=kind,
                    other=other,
                    use=self._rng.choice(USES),
                    flavour=self._rng.choice(FLAVOURS),
                    person=self._rng.choice(PEOPLE),
                    place=self._rng.choice(PLACES),
                    when=self._rng.choice(WHEN),
                    price=self._rng.choice((10, 15, 20, 25, 30, 40)),
                    months=self._rng.choice((3, 6, 8, 9, 11)),
                )
                if text not in self._seen:
                    self._seen.add(text)
                    texts.append(text)
            return texts


# --- processes: the other load on the machine, and the CPU each of ours used ------------------


def cpu_group(proc: Proc, roots: dict[str, set[int]]) -> str:
    for name, pids in roots.items():
        if proc.pid in pids:
            return name
    if DATABASE in proc.command:
        return "postgres (bench db)"
    if proc.command.startswith("postgres"):
        return "postgres (shared)"
    if "valkey" in proc.command:
        return "valkey (shared)"
    return "other processes"


class CpuMeter:
    """Cores used per group of processes between ``start()`` and ``stop()``."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._before: dict[int, Proc] = {}
        self._started = 0.0

    def start(self) -> None:
        self._before, self._started = proc_table(), time.monotonic()

    def stop(self) -> dict[str, Any]:
        after, seconds = proc_table(), time.monotonic() - self._started
        me = os.getpid()
        roots = {
            "gunicorn": self._services.tree(after, "gunicorn"),
            "celery worker": self._services.tree(after, "celery"),
            "load client (this process)": {me},
            "the shell running this": ancestors(after, me) - {me},
        }
        cores: dict[str, float] = {}
        busy: list[str] = []
        for pid, proc in after.items():
            if not proc.command:
                continue  # kernel threads
            before = self._before.get(pid)
            # A process born during the window (a new database session) counts from zero.
            used = (proc.cpu_s - (before.cpu_s if before else 0.0)) / seconds
            group = cpu_group(proc, roots)
            cores[group] = cores.get(group, 0.0) + used
            if group == "other processes" and used > BUSY_CORES:
                busy.append(f"{used:.2f} cores: {pid} {proc.command[:80]}")
        cores.pop("the shell running this", None)
        return {
            "seconds": round(seconds, 1),
            "cores": {k: round(v, 2) for k, v in sorted(cores.items(), key=lambda kv: -kv[1])},
            "busy_foreign": busy,
        }


# --- the services under test ------------------------------------------------------------------


class Services:
    """gunicorn and a Celery worker, each in its own session; stopped by pid on the way out."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.port = free_port()
        self.worker_name = f"bench-load-{uuid.uuid4().hex[:6]}@localhost"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = {
            "gunicorn": BENCH_DIR / "logs" / "load-gunicorn.log",
            "celery": BENCH_DIR / "logs" / "load-worker.log",
        }
        bin_dir = Path(sys.executable).parent
        self.commands = {
            "gunicorn": [
                str(bin_dir / "gunicorn"), "beemanhoney.wsgi:application",
                "--bind", f"127.0.0.1:{self.port}", "--worker-class", "gthread",
                "--workers", str(args.web_workers), "--threads", str(args.threads),
                "--graceful-timeout", "10",
            ],
            "celery": [
                str(bin_dir / "celery"), "-A", "beemanhoney", "worker",
                "--concurrency", str(args.concurrency), "--loglevel", "WARNING",
                "--hostname", self.worker_name, "--without-gossip", "--without-mingle",
            ],
        }  # fmt: skip

    @staticmethod
    def env() -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "LOG_LEVEL"}
        env.update(ALLOWED_HOSTS="127.0.0.1", LOG_LEVEL="WARNING", **THROTTLES_LIFTED)
        for key in ("DATABASE_URL", "REDIS_URL", "CELERY_QUEUE", "LLM_PROVIDER"):
            assert env.get(key), key
        return env

    def start(self) -> None:
        for name, command in self.commands.items():
            path = self.logs[name]
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as out:
                self.processes[name] = subprocess.Popen(
                    command,
                    cwd=PROJECT_DIR,
                    env=self.env(),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        self._wait_healthy(timeout=90)
        self._wait_worker(timeout=180)

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise SystemExit(f"{name} exited:\n{self.log_tail(name)}")

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            time.sleep(0.25)
        raise SystemExit(f"gunicorn did not answer /healthz 200:\n{self.log_tail('gunicorn')}")

    def _wait_worker(self, timeout: float) -> None:
        """Ping the worker, then wait for its pool processes to load the embedding model."""
        from beemanhoney.celery import app

        deadline = time.monotonic() + timeout
        while not app.control.ping(destination=[self.worker_name], timeout=0.5):
            self._check_alive()
            if time.monotonic() > deadline:
                raise SystemExit(f"the worker did not answer:\n{self.log_tail('celery')}")
        previous = None
        while time.monotonic() < deadline:
            table = proc_table()
            tree = self.tree(table, "celery")
            cpu = sum(table[pid].cpu_s for pid in tree if pid in table)
            if previous is not None and len(tree) > self.args.concurrency and cpu - previous < 0.05:
                return
            previous = cpu
            time.sleep(1.0)
        raise SystemExit(f"the worker pool did not settle:\n{self.log_tail('celery')}")

    def tree(self, table: dict[int, Proc], name: str) -> set[int]:
        process = self.processes.get(name)
        return descendants(table, process.pid) if process is not None else set()

    def log_tail(self, name: str) -> str:
        path = self.logs[name]
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def problems(self) -> dict[str, list[str]]:
        pattern = re.compile(r"ERROR|CRITICAL|Traceback|WORKER TIMEOUT|WorkerLost|Exception")
        found = {}
        for name, path in self.logs.items():
            text = path.read_text(errors="replace") if path.exists() else ""
            found[name] = [line[:200] for line in text.splitlines() if pattern.search(line)]
        return found

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()


# --- set-up -----------------------------------------------------------------------------------


def django_setup() -> None:
    """Migrate, empty the previous run's conversations and guests, load the demo shop."""
    conversations_django_setup(DATABASE)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    get_user_model().objects.filter(username__startswith="guest-").delete()
    log("loading the demo shop if the database is empty")
    with open(os.devnull, "w") as devnull:
        call_command("load_demo_data", if_empty=True, stdout=devnull)


# --- the broker and the runs ------------------------------------------------------------------


class Backlog:
    """The broker queue's length and the runs not yet final: what has to drain to zero."""

    def __init__(self) -> None:
        import redis

        self._redis = redis.Redis.from_url(os.environ["REDIS_URL"])
        self._queue = os.environ["CELERY_QUEUE"]

    def queue_length(self) -> int:
        pipe = self._redis.pipeline(transaction=False)
        for suffix in PRIORITY_SUFFIXES:
            pipe.llen(self._queue + suffix)
        return int(sum(pipe.execute()))

    def forget_queue(self) -> None:
        """Remove the run's empty queue and kombu's bindings for it from Redis db 13."""
        keys = [f"_kombu.binding.{self._queue}", f"_kombu.binding_permanent.{self._queue}"]
        if self.queue_length() == 0:
            keys += [self._queue + suffix for suffix in PRIORITY_SUFFIXES]
        self._redis.delete(*keys)

    @staticmethod
    def unfinished_runs() -> int:
        from agents.models import AgentRun

        return AgentRun.objects.exclude(status__in=AgentRun.FINAL_STATUSES).count()

    @staticmethod
    def database_connections() -> int:
        """Sessions open on the benchmark database (gunicorn threads, worker, this process)."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [DATABASE])
            return int(cursor.fetchone()[0])


class Monitor(threading.Thread):
    """Samples the backlog every 0.2 s while a level runs: peaks, and when it reached zero."""

    def __init__(self, backlog: Backlog) -> None:
        super().__init__(daemon=True, name="backlog-monitor")
        self.backlog = backlog
        self.stopped = threading.Event()
        self.samples: list[tuple[float, int, int]] = []  # (monotonic, queue, unfinished runs)
        self.peak_connections = 0

    def run(self) -> None:
        from django.db import connection

        try:
            while not self.stopped.wait(0.2):
                queue, unfinished = self.backlog.queue_length(), self.backlog.unfinished_runs()
                self.samples.append((time.monotonic(), queue, unfinished))
                connections = self.backlog.database_connections()
                self.peak_connections = max(self.peak_connections, connections)
        finally:
            connection.close()

    def peaks(self) -> tuple[int, int]:
        return (
            max((q for _, q, _ in self.samples), default=0),
            max((u for _, _, u in self.samples), default=0),
        )

    def zero_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` to the first sample with nothing queued and nothing running."""
        for at, queue, unfinished in self.samples:
            if at >= moment and queue == 0 and unfinished == 0:
                return at - moment
        return None

    def series(self, started: float, every: float = 5.0) -> list[tuple[float, int, int]]:
        kept: list[tuple[float, int, int]] = []
        for at, queue, unfinished in self.samples:
            if not kept or at - started - kept[-1][0] >= every:
                kept.append((round(at - started, 1), queue, unfinished))
        return kept


def drain(backlog: Backlog, timeout: float) -> dict[str, Any]:
    """From the moment the load stops: how long until no queued message and no unfinished run."""
    started = time.monotonic()
    at_stop = {"queue": backlog.queue_length(), "unfinished_runs": backlog.unfinished_runs()}
    while True:
        queue, unfinished = backlog.queue_length(), backlog.unfinished_runs()
        elapsed = time.monotonic() - started
        if queue == 0 and unfinished == 0:
            return {"at_stop": at_stop, "drained": True, "seconds": round(elapsed, 2)}
        if elapsed > timeout:
            return {
                "at_stop": at_stop,
                "drained": False,
                "seconds": round(elapsed, 2),
                "left": {"queue": queue, "unfinished_runs": unfinished},
            }
        time.sleep(0.1)


# --- simulated customers ----------------------------------------------------------------------


class StaleConnection(Exception):
    pass


class Connection:
    """One customer's keep-alive connection, reopened once when the server closed it idle.

    gunicorn closes idle keep-alive connections after 2 s; a browser then simply reconnects. A
    retried message POST carries the same Idempotency-Key, so it can never post twice.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None
        self.reconnects = 0

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(
        self, method: str, path: str, *, body: Any, headers: dict[str, str], timeout: float
    ) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(2):
            fresh = self.conn is None
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            elif self.conn.sock is not None:
                self.conn.sock.settimeout(timeout)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                raw = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if fresh or attempt:
                    raise
                self.reconnects += 1
                continue
            except BaseException:
                self.close()
                raise
            if response.will_close:
                self.close()
            return response.status, raw
        raise StaleConnection(path)


@dataclass
class RequestRecord:
    endpoint: str
    status: int  # 0: no HTTP answer (timeout, refused, reset)
    seconds: float
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class TurnRecord:
    post_s: float | None
    turn_s: float | None
    outcome: str  # succeeded, failed, cancelled, no_reply, timeout, post_error, poll_error
    run_id: str = ""
    route: str = ""
    polls: int = 0
    wall_posted: float = 0.0  # time.time() when the POST was sent
    wall_told: float = 0.0  # time.time() when the customer saw the final run


@dataclass
class LevelRecorder:
    requests: list[RequestRecord] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)
    handed_to_staff: int = 0
    reconnects: int = 0
    last_post: float = 0.0  # time.monotonic() when the last message POST was answered
    customer_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_request(self, record: RequestRecord) -> None:
        with self.lock:
            self.requests.append(record)

    def add_turn(self, record: TurnRecord) -> None:
        with self.lock:
            self.turns.append(record)


class Customer:
    """One chat-widget session: a guest, a conversation, then messages and long-polls."""

    def __init__(
        self,
        *,
        args: argparse.Namespace,
        port: int,
        texts: list[str],
        seed: str,
        recorder: LevelRecorder,
        stop_at: float,
        abort: threading.Event,
    ) -> None:
        self.args = args
        self.http = Connection(port)
        self.texts = texts
        self.rng = random.Random(seed)
        self.recorder = recorder
        self.stop_at = stop_at
        self.abort = abort
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}

    def call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        body: Any = None,
        timeout: float = 30.0,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        started = time.perf_counter()
        try:
            status, raw = self.http.request(
                method,
                path,
                body=body,
                headers={**self.headers, **(headers or {})},
                timeout=timeout,
            )
        except (OSError, http.client.HTTPException, StaleConnection) as exc:
            seconds = time.perf_counter() - started
            self.recorder.add_request(RequestRecord(endpoint, 0, seconds, type(exc).__name__))
            return 0, None
        seconds = time.perf_counter() - started
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        error = "" if 200 <= status < 300 else raw[:160].decode(errors="replace")
        self.recorder.add_request(RequestRecord(endpoint, status, seconds, error))
        return status, payload

    def run(self, delay: float) -> None:
        try:
            if self.abort.wait(delay):
                return
            self._session()
        except Exception as exc:  # a bug in the client must show, not kill the level silently
            with self.recorder.lock:
                self.recorder.customer_errors.append(f"{type(exc).__name__}: {exc}"[:200])
        finally:
            with self.recorder.lock:
                self.recorder.reconnects += self.http.reconnects
            self.http.close()

    def _session(self) -> None:
        status, body = self.call("guest create", "POST", "/api/auth/guest/")
        if status != 201:
            return
        self.headers["Authorization"] = f"Bearer {body['access']}"
        status, body = self.call(
            "conversation create", "POST", "/api/conversations/", body={"title": "Shop chat"}
        )
        if status != 201:
            return
        conversation_id = body["id"]
        for index, text in enumerate(self.texts):
            if time.monotonic() >= self.stop_at or self.abort.is_set():
                return
            if index:
                think = self.rng.uniform(self.args.think_min, self.args.think_max)
                if self.abort.wait(min(think, max(0.0, self.stop_at - time.monotonic()))):
                    return
            if not self._turn(conversation_id, text):
                return

    def _turn(self, conversation_id: str, text: str) -> bool:
        """One message and its reply; False when the customer cannot go on."""
        wall_posted, started = time.time(), time.perf_counter()
        status, body = self.call(
            "message post",
            "POST",
            f"/api/conversations/{conversation_id}/messages/",
            body={"content": text},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        post_s = time.perf_counter() - started
        with self.recorder.lock:
            # When the last POST was answered its run row is committed: from here the backlog
            # can only shrink.
            self.recorder.last_post = max(self.recorder.last_post, time.monotonic())
        if status != 202:
            self.recorder.add_turn(TurnRecord(post_s, None, "post_error"))
            return True
        if body["run"] is None:
            # The assistant handed the conversation to staff: the customer waits for a person.
            with self.recorder.lock:
                self.recorder.handed_to_staff += 1
            return False
        run_id = body["run"]["id"]
        deadline = min(started + self.args.turn_timeout, self._perf_deadline())
        polls = 0
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0.5:
                self.recorder.add_turn(TurnRecord(post_s, None, "timeout", run_id, polls=polls))
                return False
            wait = max(1, min(self.args.wait, int(remaining)))
            status, run = self.call(
                "run long-poll", "GET", f"/api/runs/{run_id}/?wait={wait}", timeout=wait + 15
            )
            polls += 1
            if status != 200:
                self.recorder.add_turn(TurnRecord(post_s, None, "poll_error", run_id, polls=polls))
                return True
            if run["status"] in FINAL:
                turn_s = time.perf_counter() - started
                outcome = run["status"]
                if outcome == "succeeded" and not run.get("reply"):
                    outcome = "no_reply"
                route = run.get("route") or ""
                self.recorder.add_turn(
                    TurnRecord(
                        post_s, turn_s, outcome, run_id, route, polls, wall_posted, time.time()
                    )
                )
                return True

    def _perf_deadline(self) -> float:
        return time.perf_counter() + max(0.0, self.stop_at - time.monotonic())


def run_customers(
    *,
    args: argparse.Namespace,
    port: int,
    customers: int,
    messages: int,
    questions: Questions,
    abort: threading.Event,
    seed: str,
) -> tuple[LevelRecorder, float]:
    recorder = LevelRecorder()
    started = time.monotonic()
    stop_at = started + args.max_seconds
    threads = []
    for index in range(customers):
        customer = Customer(
            args=args,
            port=port,
            texts=questions.take(messages),
            seed=f"{seed}:{index}",
            recorder=recorder,
            stop_at=stop_at,
            abort=abort,
        )
        delay = args.ramp * index / max(1, customers)
        thread = threading.Thread(target=customer.run, args=(delay,), daemon=True)
        threads.append(thread)
        thread.start()
    for thread in threads:
        # Each customer stops by itself at stop_at at the latest (long-polls end by then too).
        thread.join(timeout=max(1.0, stop_at + 60 - time.monotonic()))
    return recorder, time.monotonic() - started


# --- one level --------------------------------------------------------------------------------


def ms_summary(seconds: Sequence[float]) -> dict[str, float | int]:
    values = [s * 1000 for s in seconds]
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(max(values), 1) if values else float("nan"),
    }


def server_breakdown(turns: list[TurnRecord]) -> dict[str, Any]:
    """Where answered turns spent their time: AgentRun timestamps against the customer's clock.

    One machine, one clock: ``time.time()`` in the client and ``now()`` in the server agree.
    """
    from agents.models import AgentRun

    answered = {t.run_id: t for t in turns if t.run_id and t.wall_told}
    steps: dict[str, list[float]] = {
        "POST → run row (gunicorn queue + view)": [],
        "run row → worker starts (broker queue)": [],
        "graph (latency_ms)": [],
        "worker starts → finished": [],
        "finished → customer told (long-poll)": [],
    }
    for run in AgentRun.objects.filter(pk__in=list(answered), finished_at__isnull=False):
        turn = answered[str(run.pk)]
        assert run.finished_at is not None
        created, finished = run.created_at.timestamp(), run.finished_at.timestamp()
        steps["POST → run row (gunicorn queue + view)"].append(created - turn.wall_posted)
        if run.started_at is not None:
            started = run.started_at.timestamp()
            steps["run row → worker starts (broker queue)"].append(started - created)
            steps["worker starts → finished"].append(finished - started)
        if run.latency_ms is not None:
            steps["graph (latency_ms)"].append(run.latency_ms / 1000)
        steps["finished → customer told (long-poll)"].append(turn.wall_told - finished)
    return {name: ms_summary(values) for name, values in steps.items()}


def run_level(
    *,
    args: argparse.Namespace,
    services: Services,
    backlog: Backlog,
    customers: int,
    questions: Questions,
    abort: threading.Event,
) -> dict[str, Any]:
    log(f"level: {customers} customers x {args.messages} messages")
    monitor = Monitor(backlog)
    meter = CpuMeter(services)
    meter.start()
    monitor.start()
    load_average_before = os.getloadavg()
    level_started = time.monotonic()
    recorder, seconds = run_customers(
        args=args,
        port=services.port,
        customers=customers,
        messages=args.messages,
        questions=questions,
        abort=abort,
        seed=f"{args.seed}:{customers}",
    )
    cpu = meter.stop()
    monitor.stopped.set()
    monitor.join()
    level_ended = time.monotonic()
    log(f"load stopped after {seconds:.1f} s; waiting for the backlog to drain")
    drained = drain(backlog, args.drain_timeout)
    # Customers wait for their replies, so the backlog is usually empty before the last one
    # leaves: time the drain from the last message posted instead.
    since_last_post = monitor.zero_after(recorder.last_post)
    if since_last_post is None and drained["drained"]:
        since_last_post = level_ended - recorder.last_post + drained["seconds"]
    drained["since_last_post_s"] = (
        round(since_last_post, 2) if since_last_post is not None else None
    )
    peak_queue, peak_unfinished = monitor.peaks()
    requests, turns = recorder.requests, recorder.turns
    failed_requests = [r for r in requests if not r.ok]
    answered = [t for t in turns if t.outcome == "succeeded"]
    outcomes: dict[str, int] = {}
    for turn in turns:
        outcomes[turn.outcome] = outcomes.get(turn.outcome, 0) + 1
    routes: dict[str, int] = {}
    for turn in answered:
        routes[turn.route] = routes.get(turn.route, 0) + 1
    errors_by_kind: dict[str, int] = {}
    for r in failed_requests:
        key = f"{r.endpoint}: {r.status or r.error}"
        errors_by_kind[key] = errors_by_kind.get(key, 0) + 1
    endpoints = sorted({r.endpoint for r in requests})
    return {
        "customers": customers,
        "messages_per_customer": args.messages,
        "seconds": round(seconds, 1),
        "requests": len(requests),
        "failed_requests": len(failed_requests),
        "request_error_rate": len(failed_requests) / len(requests) if requests else float("nan"),
        "failed_request_kinds": errors_by_kind,
        "failed_request_samples": [asdict(r) for r in failed_requests[:5]],
        "turns_started": len(turns),
        "turns_answered": len(answered),
        "turn_error_rate": (len(turns) - len(answered)) / len(turns) if turns else float("nan"),
        "turn_outcomes": outcomes,
        "routes": routes,
        "handed_to_staff": recorder.handed_to_staff,
        "reconnects": recorder.reconnects,
        "customer_errors": recorder.customer_errors[:5],
        "post_ms": ms_summary([t.post_s for t in turns if t.post_s is not None]),
        "turn_ms": ms_summary([t.turn_s for t in answered if t.turn_s is not None]),
        "endpoint_ms": {
            e: ms_summary([r.seconds for r in requests if r.endpoint == e and r.ok])
            for e in endpoints
        },
        "long_polls_per_turn": round(sum(t.polls for t in answered) / max(1, len(answered)), 2),
        "turns_per_s": round(len(answered) / seconds, 2) if seconds else float("nan"),
        "server": server_breakdown(answered),
        "peak_queue": peak_queue,
        "peak_unfinished_runs": peak_unfinished,
        "peak_database_connections": monitor.peak_connections,
        "backlog_series": monitor.series(level_started),
        "drain": drained,
        "cpu": cpu,
        "load_average_before": [round(x, 2) for x in load_average_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def warm_up(
    *,
    args: argparse.Namespace,
    services: Services,
    backlog: Backlog,
    questions: Questions,
    abort: threading.Event,
) -> None:
    """A few turns on every gunicorn thread and worker process, so no level pays cold starts."""
    log("warming up")
    recorder, _ = run_customers(
        args=args,
        port=services.port,
        customers=max(4, args.concurrency * 2),
        messages=2,
        questions=questions,
        abort=abort,
        seed=f"{args.seed}:warm-up",
    )
    answered = sum(1 for t in recorder.turns if t.outcome == "succeeded")
    if not answered:
        failures = [asdict(r) for r in recorder.requests if not r.ok][:3]
        raise SystemExit(f"no warm-up turn was answered: {failures} {recorder.customer_errors}")
    drain(backlog, args.drain_timeout)


# --- report -----------------------------------------------------------------------------------


def pct(rate: float) -> str:
    return f"{rate * 100:.2f} %"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def level_rows(levels: list[dict[str, Any]]) -> tuple[list[str], list[list[object]]]:
    headers = ["", *[f"{lv['customers']} customers" for lv in levels]]

    def row(label: str, fn: Any) -> list[object]:
        return [label, *[fn(lv) for lv in levels]]

    def drain_text(lv: dict[str, Any]) -> str:
        d = lv["drain"]
        if not d["drained"]:
            left = d["left"]
            return f"NOT drained {d['seconds']:.0f} s after the load stopped ({left})"
        return f"{d['since_last_post_s']:.1f} s after the last POST was answered"

    def stop_text(lv: dict[str, Any]) -> str:
        at = lv["drain"]["at_stop"]
        return f"{at['queue']} / {at['unfinished_runs']}"

    def errors_met(lv: dict[str, Any]) -> str:
        rates = (lv["request_error_rate"], lv["turn_error_rate"])
        return verdict(all(rate < TARGET_ERROR_RATE for rate in rates))

    def ms3(key: str) -> Any:
        return lambda lv: "{p50:.0f} / {p95:.0f} / {p99:.0f} ms".format(**lv[key])

    def server2(key: str) -> Any:
        return lambda lv: "{p50:.0f} / {p95:.0f} ms".format(**lv["server"][key])

    rows = [
        row("machine quiet before / other processes' CPU during", lambda lv: (
            f"{'yes' if lv['quiet_before'] else 'NO'} / "
            f"{lv['cpu']['cores'].get('other processes', 0.0):.2f} cores")),
        row("duration", lambda lv: f"{lv['seconds']:.1f} s"),
        row("HTTP requests", lambda lv: lv["requests"]),
        row("failed requests",
            lambda lv: f"{lv['failed_requests']} ({pct(lv['request_error_rate'])})"),
        row("turns started / answered",
            lambda lv: f"{lv['turns_started']} / {lv['turns_answered']}"),
        row("turn error rate", lambda lv: pct(lv["turn_error_rate"])),
        row("message POST p50 / p95 / p99", ms3("post_ms")),
        row("full turn p50 / p95 / p99", ms3("turn_ms")),
        row("throughput", lambda lv: f"{lv['turns_per_s']:.2f} turns/s"),
        *[row(f"step: {name} p50 / p95", server2(name)) for name in levels[0]["server"]],
        row("peak broker queue / unfinished runs",
            lambda lv: f"{lv['peak_queue']} / {lv['peak_unfinished_runs']}"),
        row("peak Postgres sessions on the bench db", lambda lv: lv["peak_database_connections"]),
        row("broker queue / unfinished runs when the load stopped", stop_text),
        row("backlog back to zero", drain_text),
        row("target: errors < 1 %", errors_met),
        row("target: POST p95 < 300 ms",
            lambda lv: verdict(lv["post_ms"]["p95"] < TARGET_POST_P95_MS)),
    ]  # fmt: skip
    return headers, rows


def cpu_rows(levels: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    groups: list[str] = []
    for lv in levels:
        groups += [g for g in lv["cpu"]["cores"] if g not in groups]
    headers = [
        "CPU (cores, mean over the level)",
        *[f"{lv['customers']} customers" for lv in levels],
    ]
    rows = [[g, *[f"{lv['cpu']['cores'].get(g, 0.0):.2f}" for lv in levels]] for g in groups]
    return headers, rows


def endpoint_rows(levels: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    endpoints: list[str] = []
    for lv in levels:
        endpoints += [e for e in lv["endpoint_ms"] if e not in endpoints]
    headers = ["request p50 / p95 (ms)", *[f"{lv['customers']} customers" for lv in levels]]
    rows = []
    for e in endpoints:
        cells = []
        for lv in levels:
            s = lv["endpoint_ms"].get(e)
            cells.append(f"{s['p50']:.0f} / {s['p95']:.0f} (n={s['n']})" if s and s["n"] else "-")
        rows.append([e, *cells])
    return headers, rows


def report(results: dict[str, Any], *, markdown: bool) -> None:
    levels = results["levels"]
    m = results["machine"]
    print(f"\nmachine: {m['nproc']} cores, {m['cpu']}, {m['ram_gib']} GiB; {m['date']}")
    print(f"command: {results['command']}")
    print(f"stack: {results['stack']}")
    print(f"quiet before: {results['quiet_before']} {results['heavy_before'] or ''}")
    print(f"quiet after: {results['quiet_after']} {results['heavy_after'] or ''}\n")
    tables = (level_rows(levels), endpoint_rows(levels), cpu_rows(levels))
    for headers, rows in tables:
        print(text_table(headers, rows))
        print()
    for lv in levels:
        extras = {
            "outcomes": lv["turn_outcomes"],
            "routes": lv["routes"],
            "failed": lv["failed_request_kinds"],
            "handed to staff": lv["handed_to_staff"],
            "reconnects": lv["reconnects"],
            "long-polls per turn": lv["long_polls_per_turn"],
            "busy foreign": lv["cpu"]["busy_foreign"],
        }
        print(f"{lv['customers']} customers: {json.dumps(extras, ensure_ascii=False)}")
        if lv["customer_errors"]:
            print(f"  client errors: {lv['customer_errors']}")
    for name, lines in results["log_problems"].items():
        if lines:
            print(f"{name} log: {len(lines)} problem lines, e.g. {lines[:3]}")
    if markdown:
        print("\n<!-- markdown -->")
        for headers, rows in tables:
            print(markdown_table(headers, rows))
            print()


# --- main -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = "DEBUG=1 HF_HUB_OFFLINE=1 .venv/bin/python -m bench.load " + shlex.join(
        sys.argv[1:] if argv is None else list(argv)
    )
    raise_stopped_on_signals()
    abort = threading.Event()
    env = servers_environment(DATABASE, redis_db=REDIS_DB, workers_queue_prefix="bench-load")
    django_setup()
    log(f"database {DATABASE}, redis db {REDIS_DB}, queue {env['queue']}")
    services = Services(args)
    backlog = Backlog()
    questions = Questions(args.seed)
    results: dict[str, Any] = {
        "machine": machine(),
        "command": command.strip(),
        "stack": (
            f"gunicorn gthread --workers {args.web_workers} --threads {args.threads}; celery "
            f"prefork --concurrency {args.concurrency}; LLM_PROVIDER=offline; think "
            f"{args.think_min}-{args.think_max} s; long-poll ?wait={args.wait}"
        ),
        "levels": [],
    }
    try:
        log(f"starting gunicorn on 127.0.0.1:{services.port} and a Celery worker")
        services.start()
        warm_up(args=args, services=services, backlog=backlog, questions=questions, abort=abort)
        quiet_until = time.monotonic() + args.wait_quiet_minutes * 60
        for customers in args.customers:
            time.sleep(3)  # let the previous level's tail settle
            # Checked before every level: other benchmarks come and go between levels too.
            minutes = max(0.0, quiet_until - time.monotonic()) / 60
            quiet, heavy = wait_until_quiet(minutes, database=DATABASE)
            results.setdefault("quiet_before", quiet)
            results.setdefault("heavy_before", heavy)
            level = run_level(
                args=args,
                services=services,
                backlog=backlog,
                customers=customers,
                questions=questions,
                abort=abort,
            )
            level.update(quiet_before=quiet, heavy_before=heavy)
            results["levels"].append(level)
        results["log_problems"] = services.problems()
    except Stopped:
        log("interrupted; stopping what was started")
        abort.set()
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        abort.set()
        services.stop()
        with contextlib.suppress(Exception):
            backlog.forget_queue()
    results["quiet_after"] = not (heavy_after := heavy_processes(database=DATABASE))
    results["heavy_after"] = heavy_after
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
    report(results, markdown=args.markdown)
    log(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
