"""Chat-turn benchmark: latency, its breakdown, the sum of its parts, and throughput.

A turn is the customer's message going in through ``conversations.services.message_post`` (the
code ``POST /api/conversations/{id}/messages/`` calls) and the assistant's reply row coming out
of a real Celery worker running the LangGraph graph with the offline provider. It measures:

- latency: sequential turns, each in a fresh conversation, from the call to ``message_post`` to
  the reply row (completion is detected with ``run_finished_wait``, blocking, not polling), and
  the same for a subset over HTTP against a gunicorn it starts on a free loopback port;
- the breakdown of each run from its ``AgentRun`` timestamps;
- the parts measured alone: a Celery round trip of ``common.worker_ping``, the graph in-process
  (``agents.turns.run_turn``), and the database work of the producer and of the worker;
- throughput with 1 and with 2 worker processes, 4 producer threads posting 100 turns each.

Isolation: its own database ``beemanhoney_bench_turns`` on the embedded PostgreSQL, Redis
database 13 of the embedded Valkey and a Celery queue of its own, so nothing else consumes its
tasks. Every process it starts is stopped on exit.

    DEBUG=1 HF_HUB_OFFLINE=1 .venv/bin/python -m bench.turns --markdown

Nothing is asserted: the figures are printed (``--markdown`` for docs/BENCHMARKS.md) and saved
as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

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
    ancestors,
    descendants,
    is_foreign,
    machine,
    machine_busy_s,
    own_cpu_s,
    proc_table,
    wait_until_quiet,
)

DATABASE = "beemanhoney_bench_turns"
# Not 14 or 15: the test suite uses those (its cache and broker) and empties them per test.
REDIS_DB = 13
CUSTOMER = "bench-turns-customer"
TARGET_P50_MS = 50.0
TARGET_RATIO = 1.3
RUN_TIMEOUT_S = 30.0
PRODUCER_DB = "producer: message_post (commit + dispatch txn, no broker)"
WORKER_DB = "worker: agent_run_execute with the graph stubbed (claim, budget, reply, publish)"
SHIPPED = "as shipped"
ONE_THREAD = "OMP_NUM_THREADS=1"
# The second pass changes only the environment of the processes it starts (no code): PyTorch
# then runs each embedding on one thread instead of one per core.
CONFIGS = {SHIPPED: {}, ONE_THREAD: {"OMP_NUM_THREADS": "1"}}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", type=int, default=20, help="turns before measuring")
    parser.add_argument("--turns", type=int, default=200, help="sequential turns measured")
    parser.add_argument("--http-turns", type=int, default=50, help="0 skips gunicorn")
    parser.add_argument("--parts", type=int, default=200, help="samples of each part alone")
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--per-producer", type=int, default=100)
    parser.add_argument("--worker-processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--no-variant",
        action="store_true",
        help="skip the second pass with one torch thread per process (OMP_NUM_THREADS=1)",
    )
    parser.add_argument(
        "--wait-quiet-minutes",
        type=float,
        default=20,
        help="wait (polling every 30 s) this long for other heavy processes to finish",
    )
    parser.add_argument("--markdown", action="store_true", help="also print a markdown block")
    parser.add_argument("--json", type=Path, default=BENCH_DIR / "turns-results.json")
    return parser.parse_args(argv)


# --- customer messages ------------------------------------------------------------------------

KINDS = (
    "manuka honey", "raw honey", "creamed honey", "heather honey", "acacia honey", "clover honey",
    "lavender honey", "buckwheat honey", "honeycomb", "set honey", "chilli honey",
    "wildflower honey", "beeswax candles", "beeswax wraps", "bee pollen", "propolis", "mead",
    "honey gift set", "orange blossom honey", "forest honey",
)  # fmt: skip
USES = (
    "my morning tea", "porridge", "baking bread", "a cheese board", "a sore throat", "pancakes",
    "glazing a ham", "salad dressings", "Greek yoghurt", "hot buttered toast", "marinades",
    "cocktails", "roast vegetables", "smoothies", "hot toddies", "granola",
)  # fmt: skip
FLAVOURS = (
    "mild", "dark", "floral", "robust", "creamy", "runny", "smoky", "fruity", "malty", "light",
    "rich", "spicy",
)  # fmt: skip
PEOPLE = ("mum", "dad", "grandmother", "boss", "neighbour", "teacher", "sister", "best friend")
REGIONS = ("Scotland", "Wales", "Cornwall", "Yorkshire", "New Zealand", "Greece", "Spain")
PLACES = (
    "Leeds", "Belfast", "Cornwall", "the Isle of Wight", "France", "Germany", "Edinburgh",
    "Cardiff", "the Scottish Highlands", "Dublin", "Spain", "Norway",
)  # fmt: skip
WHEN = ("last week", "yesterday", "on Monday", "two weeks ago", "on Friday", "this morning")
PRODUCT_TEMPLATES = (
    "Do you have a {flavour} honey that is good for {use}?",
    "I'm looking for {kind} for {use}, ideally under £{price}.",
    "What {kind} would you recommend as a present for my {person}?",
    "Is the {kind} in stock? I'd like some for {use}.",
    "Which of your honeys is best for {use}? Something {flavour}.",
    "Have you got any {kind} from {region}?",
    "How much is your {kind}? I want something {flavour} for {use}.",
    "I need a gift for my {person} under £{price}, maybe {kind}.",
)
SUPPORT_TEMPLATES = (
    "How long does delivery to {place} take for an order of {kind}?",
    "How much is shipping to {place}?",
    "Can I return an opened jar of {kind} I bought {when}?",
    "My {kind} arrived {when} and the jar was broken, what should I do?",
    "My {kind} has gone solid and grainy, is it still safe to eat?",
    "How should I store {kind} once it is open?",
    "Can I give {kind} to my {months}-month-old baby?",
    "When will I get my refund for the {kind} I sent back {when}?",
    "How do I track the order of {kind} I placed {when}?",
    "Is your {kind} safe if I have a pollen allergy?",
)
HANDOFF_TEMPLATES = (
    "Can I talk to a person about my order of {kind}?",
    "I want to speak to a human about the {kind} I bought {when}.",
)


class Messages:
    """Distinct customer messages (55% product, 40% support, 5% asking for a person).

    Never repeated within a run, so no turn is helped by a process's query-embedding cache.
    """

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"beeman-bench-turns:{seed}")
        self._seen: set[str] = set()

    def take(self, count: int) -> list[str]:
        texts: list[str] = []
        while len(texts) < count:
            roll = self._rng.random()
            kind = PRODUCT_TEMPLATES if roll < 0.55 else SUPPORT_TEMPLATES
            templates = HANDOFF_TEMPLATES if roll >= 0.95 else kind
            text = self._rng.choice(templates).format(
                kind=self._rng.choice(KINDS),
                use=self._rng.choice(USES),
                flavour=self._rng.choice(FLAVOURS),
                person=self._rng.choice(PEOPLE),
                region=self._rng.choice(REGIONS),
                place=self._rng.choice(PLACES),
                when=self._rng.choice(WHEN),
                price=self._rng.choice((10, 15, 20, 25, 30, 40, 50)),
                months=self._rng.choice((3, 6, 8, 9, 10, 11)),
            )
            if text not in self._seen:
                self._seen.add(text)
                texts.append(text)
        return texts


# --- processes: the machine's other load, and the ones this benchmark starts ----------------


class LoadMeter:
    """What else kept the machine busy between ``start()`` and ``stop()``, in cores.

    ``other_cores`` is the machine's busy time minus this benchmark's processes (this one, its
    live and reaped children, and the PostgreSQL backends of its database that are still open);
    the backends of its workers' per-task connections exit within the phase, so they count as
    other. ``busy`` lists the other processes that used more than a quarter of a core.
    """

    def __init__(self) -> None:
        self._before: dict[int, Proc] = {}
        self._started = 0.0
        self._machine = 0.0
        self._own = 0.0

    def start(self) -> None:
        self._before, self._started = proc_table(), time.monotonic()
        self._machine, self._own = machine_busy_s(), own_cpu_s()

    def stop(self) -> dict[str, Any]:
        after, seconds = proc_table(), time.monotonic() - self._started
        machine = (machine_busy_s() - self._machine) / seconds
        mine = descendants(after, os.getpid()) | ancestors(after, os.getpid())
        children = descendants(after, os.getpid()) - {os.getpid()}
        own = own_cpu_s() - self._own
        busy: list[tuple[float, str]] = []
        for pid, proc in after.items():
            used = proc.cpu_s - (self._before[pid].cpu_s if pid in self._before else 0.0)
            if pid in children or DATABASE in proc.command:
                own += used
            elif is_foreign(proc, mine, database=DATABASE) and used / seconds > BUSY_CORES:
                busy.append((used / seconds, f"{pid} {proc.command[:90]}"))
        busy.sort(reverse=True)
        return {
            "machine_cores": round(machine, 2),
            "bench_cores": round(own / seconds, 2),
            "other_cores": round(max(0.0, machine - own / seconds), 2),
            "busy": [f"{c:.2f} cores: {p}" for c, p in busy],
        }


class Started:
    """Processes this benchmark started; each is stopped by its own pid on exit."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, command: list[str], *, env: dict[str, str], log_path: Path) -> Any:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=PROJECT_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process in self.processes:
            self.processes.remove(process)

    def stop_all(self) -> None:
        for process in list(self.processes):
            self.stop(process)


STARTED = Started()


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    keys = ("DATABASE_URL", "REDIS_URL", "CELERY_QUEUE", "DEBUG", "HF_HUB_OFFLINE",
            "TRANSFORMERS_OFFLINE", "LLM_PROVIDER", "DJANGO_SETTINGS_MODULE")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in {"LOG_LEVEL"}}
    env.update(THROTTLES_LIFTED)
    missing = [key for key in keys if key not in env]
    assert not missing, missing
    return {**env, **(extra or {})}


class Worker:
    """``celery -A beemanhoney worker --pool prefork --concurrency N`` on the bench queue."""

    def __init__(self, concurrency: int, extra_env: dict[str, str], label: str) -> None:
        self.concurrency = concurrency
        self.extra_env = extra_env
        self.name = f"bench-turns-{concurrency}p-{uuid.uuid4().hex[:6]}@localhost"
        self.log_path = BENCH_DIR / "logs" / f"turns-worker-{label}-{concurrency}p.log"
        self.process: Any = None

    def start(self, timeout: float = 120) -> Worker:
        from beemanhoney.celery import app

        command = [
            sys.executable, "-m", "celery", "-A", "beemanhoney", "worker",
            "--pool", "prefork", "--concurrency", str(self.concurrency),
            "--loglevel", "INFO", "--hostname", self.name,
        ]  # fmt: skip
        env = child_env(self.extra_env)
        self.process = STARTED.start(command, env=env, log_path=self.log_path)
        deadline = time.monotonic() + timeout
        while not app.control.ping(destination=[self.name], timeout=0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker did not start:\n{self.log()[-3000:]}")
        self._wait_children_idle(deadline)
        return self

    def _wait_children_idle(self, deadline: float) -> None:
        """Each pool process loads the embedding model in worker_process_init: wait for it."""
        previous = None
        while time.monotonic() < deadline:
            table = proc_table()
            tree = descendants(table, self.process.pid)
            cpu = sum(table[pid].cpu_s for pid in tree if pid in table)
            if previous is not None and len(tree) >= self.concurrency + 1 and cpu - previous < 0.05:
                return
            previous = cpu
            time.sleep(1.0)
        raise SystemExit(f"worker pool did not settle:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def problems(self) -> list[str]:
        pattern = re.compile(r"ERROR|CRITICAL|Traceback|Timed out waiting for UP|WorkerLost")
        return [line[:200] for line in self.log().splitlines() if pattern.search(line)]

    def stop(self) -> None:
        if self.process is not None:
            STARTED.stop(self.process)


class Gunicorn:
    """The API as ``make run`` serves it (gthread, 4 threads), on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.log_path = BENCH_DIR / "logs" / "turns-gunicorn.log"
        self.process: Any = None

    def start(self, timeout: float = 60) -> Gunicorn:
        command = [
            sys.executable, "-m", "gunicorn", "beemanhoney.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}", "--workers", "1",
            "--worker-class", "gthread", "--threads", "4",
        ]  # fmt: skip
        self.process = STARTED.start(command, env=child_env(), log_path=self.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return self
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise SystemExit(f"gunicorn did not start:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None:
            STARTED.stop(self.process)


# --- set-up -----------------------------------------------------------------------------------


def django_setup() -> Any:
    """Migrate, empty the conversation tables, load the demo shop; return the bench customer."""
    conversations_django_setup(DATABASE)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    log("loading the demo shop (embeds what changed)")
    call_command("load_demo_data", stdout=open(os.devnull, "w"))  # noqa: SIM115
    customer, _ = get_user_model().objects.get_or_create(username=CUSTOMER)
    return customer


# --- measuring turns --------------------------------------------------------------------------


@dataclass
class Turn:
    text: str
    wall0: float  # time.time() just before message_post
    posted_s: float  # message_post returned (commit, dispatch and publish included)
    told_s: float | None  # run_finished_wait returned True
    run_id: str
    status: str = ""
    route: str = ""
    latency_ms: int | None = None
    run_created: float | None = None
    dispatched: float | None = None
    started: float | None = None
    finished: float | None = None
    reply_created: float | None = None

    @property
    def reply_ms(self) -> float | None:
        return None if self.reply_created is None else (self.reply_created - self.wall0) * 1000


def _finished(run_id: str) -> Callable[[], bool]:
    from agents.models import AgentRun

    return lambda: AgentRun.objects.filter(pk=run_id, status__in=AgentRun.FINAL_STATUSES).exists()


def wait_finished(run_id: str, timeout: float = RUN_TIMEOUT_S) -> bool:
    """The project's own blocking wait (pub/sub or stream: whichever this checkout has)."""
    try:
        from agents.run_stream import run_finished_wait
    except ImportError:
        # Checkouts before the event stream (the A/B baseline may be one) had this module.
        from agents.run_events import run_finished_wait  # type: ignore[no-redef,import-not-found]

    return run_finished_wait(run_id=run_id, timeout=timeout, is_finished=_finished(run_id))


def post_turn(customer: Any, conversation: Any, text: str, *, wait: bool) -> Turn:
    from conversations.services import message_post

    wall0, t0 = time.time(), time.perf_counter()
    _, run = message_post(conversation=conversation, author=customer, content=text)
    posted = time.perf_counter() - t0
    assert run is not None
    told = None
    if wait:
        if not wait_finished(str(run.pk)):
            raise SystemExit(f"run {run.pk} did not finish within {RUN_TIMEOUT_S} s")
        told = time.perf_counter() - t0
    return Turn(text=text, wall0=wall0, posted_s=posted, told_s=told, run_id=str(run.pk))


def turns_fill(turns: list[Turn]) -> list[Turn]:
    """Read each turn's run timestamps and reply row."""
    from agents.models import AgentRun
    from conversations.models import Message

    runs = AgentRun.objects.in_bulk([t.run_id for t in turns])
    replies = {
        str(m.run_id): m.created_at.timestamp()
        for m in Message.objects.filter(
            run_id__in=[t.run_id for t in turns], role=Message.Role.ASSISTANT
        )
    }
    for turn in turns:
        run = runs[uuid.UUID(turn.run_id)]
        turn.status, turn.route, turn.latency_ms = run.status, run.route, run.latency_ms
        turn.run_created = run.created_at.timestamp()
        turn.dispatched = run.dispatched_at.timestamp() if run.dispatched_at else None
        turn.started = run.started_at.timestamp() if run.started_at else None
        turn.finished = run.finished_at.timestamp() if run.finished_at else None
        turn.reply_created = replies.get(turn.run_id)
    return turns


def sequential_turns(customer: Any, texts: list[str]) -> list[Turn]:
    from conversations.services import conversation_create

    turns = []
    for text in texts:
        conversation = conversation_create(owner=customer, title="bench turn")
        turns.append(post_turn(customer, conversation, text, wait=True))
    return turns_fill(turns)


def db_sessions() -> int:
    """Sessions ever opened to the bench database (PostgreSQL 14+), after stats are flushed."""
    from django.db import connection

    time.sleep(1.2)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", [DATABASE])
        return int(cursor.fetchone()[0])


def summary_ms(values: Sequence[float | None]) -> dict[str, float]:
    present = [v for v in values if v is not None]
    return {
        "n": len(present),
        "p50": round(percentile(present, 50), 2),
        "p95": round(percentile(present, 95), 2),
    }


def breakdown(turns: list[Turn]) -> dict[str, dict[str, float]]:
    """p50/p95 of each step, in ms, from the run timestamps."""

    def ms(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else (b - a) * 1000

    steps: dict[str, list[float | None]] = {
        "message_post → run row": [ms(t.wall0, t.run_created) for t in turns],
        "run row → dispatched (commit + dispatch txn)": [
            ms(t.run_created, t.dispatched) for t in turns
        ],
        "dispatched → started (publish, queue, worker, _start lock)": [
            ms(t.dispatched, t.started) for t in turns
        ],
        "budget check + graph (latency_ms)": [
            float(t.latency_ms) if t.latency_ms is not None else None for t in turns
        ],
        "worker DB around the graph (_start tail + _succeed head)": [
            around - t.latency_ms
            if t.latency_ms is not None and (around := ms(t.started, t.finished)) is not None
            else None
            for t in turns
        ],
        "finished → reply row": [ms(t.finished, t.reply_created) for t in turns],
        "reply row → client told (commit, publish, wake-up)": [
            ms(t.reply_created, t.wall0 + t.told_s) if t.told_s is not None else None for t in turns
        ],
    }
    return {name: summary_ms(values) for name, values in steps.items()}


# --- HTTP -------------------------------------------------------------------------------------


def http_turns(customer: Any, texts: list[str], warmup: int) -> dict[str, Any]:
    from rest_framework_simplejwt.tokens import RefreshToken

    server = Gunicorn().start()
    try:
        token = str(RefreshToken.for_user(customer).access_token)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=RUN_TIMEOUT_S)

        def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
            conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
            response = conn.getresponse()
            data = json.loads(response.read() or b"null")
            if response.status >= 300:
                raise SystemExit(f"{method} {path}: {response.status} {data}")
            return data

        turns = []
        for index, text in enumerate(texts):
            conversation = call("POST", "/api/conversations/", {"title": "bench http"})
            wall0, t0 = time.time(), time.perf_counter()
            posted = call("POST", f"/api/conversations/{conversation['id']}/messages/",
                          {"content": text})  # fmt: skip
            posted_s = time.perf_counter() - t0
            run = call("GET", f"/api/runs/{posted['run']['id']}/?wait={RUN_TIMEOUT_S:g}")
            told_s = time.perf_counter() - t0
            if run["status"] != "succeeded" or run["reply"] is None:
                raise SystemExit(f"HTTP turn did not succeed: {run}")
            if index >= warmup:
                turns.append(Turn(text, wall0, posted_s, told_s, run_id=str(run["id"])))
        conn.close()
    finally:
        server.stop()
    turns_fill(turns)
    return {
        "post_202": summary_ms([t.posted_s * 1000 for t in turns]),
        "reply_row": summary_ms([t.reply_ms for t in turns]),
        "client_has_reply": summary_ms([t.told_s * 1000 for t in turns if t.told_s]),
    }


# --- the parts alone --------------------------------------------------------------------------


def timed(samples: int, warmup: int, work: Callable[[int], Any]) -> list[float]:
    """Seconds of ``work(i)`` for each i after ``warmup`` unmeasured calls."""
    seconds = []
    for index in range(warmup + samples):
        started = time.perf_counter()
        work(index)
        if index >= warmup:
            seconds.append(time.perf_counter() - started)
    return seconds


def ms_summary(seconds: Sequence[float]) -> dict[str, float]:
    return summary_ms([s * 1000 for s in seconds])


def ping_round_trips(samples: int) -> dict[str, Any]:
    """``common.worker_ping`` through the same worker; its result is polled every 0.5 ms."""
    from django_celery_results.models import TaskResult

    from beemanhoney.common.tasks import worker_ping

    sent: dict[str, float] = {}

    def ping(index: int) -> None:
        wall = time.time()
        result = worker_ping.apply_async(args=(f"bench-{index}",))
        assert result.get(timeout=10, interval=0.0005) == f"bench-{index}"
        sent[result.id] = wall

    round_trips = timed(samples, 20, ping)
    rows = TaskResult.objects.filter(task_id__in=list(sent)[20:])
    # celery-types' stub of TaskResult lacks ``date_started`` (the model has it).
    to_started = [
        (r.date_started.timestamp() - sent[r.task_id]) * 1000  # type: ignore[attr-defined]
        for r in rows
    ]
    to_done = [(r.date_done.timestamp() - sent[r.task_id]) * 1000 for r in rows]
    return {
        "round_trip": ms_summary(round_trips),
        "send_to_started_row": summary_ms(to_started),
        "send_to_result_row": summary_ms(to_done),
    }


def queued_run(customer: Any, text: str) -> Any:
    """A conversation with one user message and its run, marked dispatched but never sent."""
    from django.utils import timezone

    from agents.models import AgentRun
    from conversations.models import Conversation, Message

    conversation = Conversation.objects.create(owner=customer, title="bench part")
    message = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content=text, author=customer
    )
    return AgentRun.objects.create(
        conversation=conversation,
        user_message=message,
        dispatched_at=timezone.now(),
        celery_task_id=str(uuid.uuid4()),
    )


def graph_alone(
    customer: Any, texts: list[str], warmup: int, torch_threads: int | None
) -> tuple[dict[str, Any], Any]:
    """``run_turn`` in this process on runs like the workers get; the model loaded first."""
    import torch

    from agents.providers.router import warm_up
    from agents.turns import run_turn

    warm_up()
    runs = [queued_run(customer, text) for text in texts]
    results: list[Any] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(torch_threads or threads)
    try:
        seconds = timed(len(runs) - warmup, warmup, lambda i: results.append(run_turn(run=runs[i])))
    finally:
        torch.set_num_threads(threads)
    sales = next((r for r in results if r.route == "sales" and r.tool_calls), results[-1])
    routes: dict[str, int] = {}
    for result in results[warmup:]:
        routes[result.route] = routes.get(result.route, 0) + 1
    return {"run_turn": ms_summary(seconds), "routes": routes}, sales


def graph_pieces(texts: list[str], samples: int) -> dict[str, Any]:
    """What the graph is made of: one query embedding and the two hybrid searches."""
    from catalog import selectors
    from catalog.embeddings import embed_query, get_embedding_backend

    backend = get_embedding_backend()
    embed = timed(samples, 5, lambda i: backend.embed_query(texts[i]))
    for text in texts:
        embed_query(text)  # cached, so the searches below time only the database
    filters = selectors.ProductFilters()
    products = timed(
        samples, 5, lambda i: selectors.product_search(query=texts[i], filters=filters, limit=5)
    )
    knowledge = timed(samples, 5, lambda i: selectors.knowledge_search(query=texts[i], limit=3))
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = timed(samples, 5, lambda i: backend.embed_query(texts[samples + 5 + i]))
    finally:
        torch.set_num_threads(threads)
    return {
        f"embed_query (uncached, torch {threads} threads)": ms_summary(embed),
        "embed_query (uncached, torch 1 thread)": ms_summary(single),
        "product_search (vector cached)": ms_summary(products),
        "knowledge_search (vector cached)": ms_summary(knowledge),
    }


def db_alone(customer: Any, texts: list[str], result: Any, samples: int) -> dict[str, Any]:
    """The services' transactions without the broker or the graph."""
    from django.db import connection
    from django.utils import timezone

    from agents import selectors, services
    from agents.models import AgentRun
    from conversations.services import conversation_create, message_post

    conversations = [conversation_create(owner=customer, title="bench db") for _ in texts]

    def post(index: int) -> None:
        message_post(conversation=conversations[index], author=customer, content=texts[index])

    # The run is dispatched (its row updated) but never published.
    with mock.patch.object(services, "_send", return_value=None):
        producer = timed(samples, 10, post)
    runs = [queued_run(customer, text) for text in texts]

    def worker_db(index: int) -> None:
        run = services.agent_run_execute(
            run_id=str(runs[index].pk), task_id=runs[index].celery_task_id
        )
        if run is None or run.status != "succeeded":
            raise SystemExit(f"the stubbed turn did not succeed: {run}")

    # Everything the task does but the graph: the graph answers with a stored sales reply.
    with mock.patch("agents.turns.run_turn", return_value=result):
        worker = timed(samples, 10, worker_db)
    pieces = {}
    if hasattr(selectors, "budget_exceeded"):
        conversation_id = runs[0].conversation_id
        budget = timed(
            samples, 5, lambda i: selectors.budget_exceeded(conversation_id=conversation_id)
        )
        today = AgentRun.objects.filter(created_at__date=timezone.localdate()).count()
        pieces[f"  piece: budget_exceeded ({today} runs today)"] = ms_summary(budget)

    def reconnect(index: int) -> None:
        connection.close()
        connection.ensure_connection()

    connect = timed(min(samples, 50), 3, reconnect)
    return {
        PRODUCER_DB: ms_summary(producer),
        WORKER_DB: ms_summary(worker),
        **pieces,
        "a new database connection (Django, Unix socket)": ms_summary(connect),
    }


# --- throughput -------------------------------------------------------------------------------


def broker_backlog() -> dict[str, int]:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    queue = os.environ["CELERY_QUEUE"]
    waiting = sum(int(client.llen(key)) for key in client.scan_iter(f"{queue}*"))
    return {"queued_messages": waiting, "unacked": int(client.hlen("unacked"))}


def burst(customer: Any, texts: list[str], producers: int) -> dict[str, Any]:
    """``producers`` threads post their share of ``texts`` as fast as they can; all answered."""
    from django.db import connection

    from conversations.services import conversation_create

    shares = [texts[i::producers] for i in range(producers)]
    conversations = [[conversation_create(owner=customer, title="bench burst") for _ in s]
                     for s in shares]  # fmt: skip
    barrier = threading.Barrier(producers + 1)
    posted: list[list[Turn]] = [[] for _ in range(producers)]
    errors: list[BaseException] = []

    def produce(index: int) -> None:
        try:
            barrier.wait()
            for conversation, text in zip(conversations[index], shares[index], strict=True):
                posted[index].append(post_turn(customer, conversation, text, wait=False))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=produce, args=(i,)) for i in range(producers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    posting_s = time.perf_counter() - started
    if errors:
        raise errors[0]
    turns = [turn for share in posted for turn in share]
    # Generous: a loaded machine answers a few turns a second.
    deadline = time.monotonic() + 120 + len(turns)
    unfinished = [
        t.run_id for t in turns if not wait_finished(t.run_id, deadline - time.monotonic())
    ]
    time.sleep(0.5)  # the worker acknowledges after storing the task result
    turns_fill(turns)
    first_post = min(t.wall0 for t in turns)
    last_reply = max(t.reply_created or 0.0 for t in turns)
    statuses: dict[str, int] = {}
    for turn in turns:
        statuses[turn.status] = statuses.get(turn.status, 0) + 1
    return {
        "producers": producers,
        "turns": len(turns),
        "posting_s": round(posting_s, 2),
        "elapsed_s": round(last_reply - first_post, 2),
        "turns_per_s": round(len(turns) / (last_reply - first_post), 1),
        "latency_under_load": summary_ms([t.reply_ms for t in turns]),
        "statuses": statuses,
        "unfinished": len(unfinished),
        "backlog_after": broker_backlog(),
    }


# --- report -----------------------------------------------------------------------------------


def machine_and_commit() -> dict[str, Any]:
    git = ["git", "-C", str(PROJECT_DIR)]
    head = subprocess.run([*git, "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "agents", "conversations", "catalog",
                            "beemanhoney"], capture_output=True, text=True)  # fmt: skip
    return {
        "commit": head.stdout.strip()[:80],
        "uncommitted_app_files": len(dirty.stdout.splitlines()),
        **machine(),
    }


@dataclass
class Results:
    machine: dict[str, Any]
    command: str
    quiet_before: bool
    heavy_before: list[str]
    # Per configuration (SHIPPED, ONE_THREAD):
    latency: dict[str, Any] = field(default_factory=dict)
    breakdown: dict[str, Any] = field(default_factory=dict)
    graph: dict[str, Any] = field(default_factory=dict)
    throughput: dict[str, dict[str, Any]] = field(default_factory=dict)
    # As shipped only:
    http: dict[str, Any] = field(default_factory=dict)
    ping: dict[str, Any] = field(default_factory=dict)
    db: dict[str, Any] = field(default_factory=dict)
    graph_pieces: dict[str, Any] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)
    worker_problems: dict[str, list[str]] = field(default_factory=dict)


def sum_of_parts(results: Results, config: str) -> dict[str, float]:
    pieces = {
        "(a) Celery round trip, common.worker_ping": results.ping["round_trip"]["p50"],
        "(b) graph alone, run_turn in-process": results.graph[config]["run_turn"]["p50"],
        "(c) producer DB: message_post": results.db[PRODUCER_DB]["p50"],
        "(c) worker DB: agent_run_execute minus the graph": results.db[WORKER_DB]["p50"],
    }
    total = sum(pieces.values())
    whole = results.latency[config]["reply_row"]["p50"]
    return {**pieces, "sum of parts": round(total, 2), "whole p50": whole,
            "whole / sum": round(whole / total, 2)}  # fmt: skip


def _complete(results: Results) -> list[str]:
    """Configurations with both a latency pass and the parts to compare it with."""
    if not (results.ping and results.db):
        return []
    return [c for c in results.latency if c in results.graph]


def targets(results: Results) -> list[list[object]]:
    rows: list[list[object]] = []
    for config in _complete(results):
        p50 = results.latency[config]["reply_row"]["p50"]
        ratio = sum_of_parts(results, config)["whole / sum"]
        rows += [
            ["turn p50 ≤ 50 ms (message_post → reply row)", config, f"{p50:.1f} ms",
             "met" if p50 <= TARGET_P50_MS else "not met"],
            ["whole p50 ≤ 1.3 x sum of parts", config, f"{ratio:.2f} x",
             "met" if ratio <= TARGET_RATIO else "not met"],
        ]  # fmt: skip
    return rows


Table = tuple[str, list[str], list[list[object]]]


def _by_config(
    title: str, label: str, configs: list[str], rows: dict[str, dict[str, dict[str, float]]]
) -> Table:
    """Rows of p50/p95 with a pair of columns per configuration; '-' where one is missing."""
    headers = [label] + [f"{c} {q}" for c in configs for q in ("p50", "p95")]
    body = []
    for name, per_config in rows.items():
        cells: list[object] = [name]
        for config in configs:
            s = per_config.get(config)
            cells += [f"{s['p50']:.1f}", f"{s['p95']:.1f}"] if s else ["-", "-"]
        body.append(cells)
    return title, headers, body


def tables(results: Results) -> list[Table]:
    """The report's tables, for whatever phases finished."""

    def row(name: str, s: dict[str, float]) -> list[object]:
        return [name, s["n"], f"{s['p50']:.1f}", f"{s['p95']:.1f}"]

    out: list[Table] = []
    configs = list(results.latency)
    if configs:
        lat = results.latency
        measures = {
            "message_post → reply row committed": "reply_row",
            "message_post → client told (run_finished_wait)": "client_told",
            "message_post returns (the 202's work)": "posted",
        }
        rows = {name: {c: lat[c][key] for c in configs} for name, key in measures.items()}
        if results.http:
            rows["HTTP POST → reply row"] = {SHIPPED: results.http["reply_row"]}
            rows["HTTP POST → GET ?wait has the reply"] = {
                SHIPPED: results.http["client_has_reply"]
            }
            rows["HTTP POST answered 202"] = {SHIPPED: results.http["post_202"]}
        n = lat[configs[0]]["reply_row"]["n"]
        out.append(_by_config(f"Latency, {n} sequential turns (ms)", "measure", configs, rows))
        facts = [
            [config, ", ".join(f"{k or '-'} {v}" for k, v in sorted(lat[config]["routes"].items())),
             lat[config]["not_succeeded"], lat[config]["db_sessions_per_turn"]]
            for config in configs
        ]  # fmt: skip
        out.append(
            (
                "About those turns",
                ["config", "routes", "not succeeded", "new PostgreSQL sessions per turn"],
                facts,
            )
        )
        steps = {
            name: {c: results.breakdown[c][name] for c in configs if c in results.breakdown}
            for name in results.breakdown[configs[0]]
        }
        out.append(
            _by_config("Breakdown per run from AgentRun timestamps (ms)", "step", configs, steps)
        )
    if results.ping and results.db:
        ping = results.ping
        part_rows = [
            row("Celery round trip: worker_ping (result polled 0.5 ms)", ping["round_trip"]),
            row("  of which send → STARTED row written", ping["send_to_started_row"]),
            row("  of which send → SUCCESS row written", ping["send_to_result_row"]),
        ]
        part_rows += [row(f"graph alone: run_turn in-process, {config}", g["run_turn"])
                      for config, g in results.graph.items()]  # fmt: skip
        part_rows += [row(f"  piece: {name}", s) for name, s in results.graph_pieces.items()]
        part_rows += [row(f"DB alone: {name}", s) for name, s in results.db.items()]
        out.append(("Parts measured alone (ms)", ["part", "n", "p50", "p95"], part_rows))
    complete = _complete(results)
    if complete:
        sums = {config: sum_of_parts(results, config) for config in complete}
        body: list[list[object]] = [
            [key, *[f"{sums[c][key]:.2f}" for c in complete]] for key in sums[complete[0]]
        ]
        out.append(("Whole vs sum of parts (p50, ms)", ["", *complete], body))
    tp_rows = [
        [config, f"{procs}", t["turns"], t["posting_s"], t["elapsed_s"], t["turns_per_s"],
         f"{t['latency_under_load']['p50']:.0f} / {t['latency_under_load']['p95']:.0f}",
         ", ".join(f"{k} {v}" for k, v in t["statuses"].items()),
         f"{t['backlog_after']['queued_messages']} queued, "
         f"{t['backlog_after']['unacked']} unacked"]
        for config, by_procs in results.throughput.items() for procs, t in by_procs.items()
    ]  # fmt: skip
    if tp_rows:
        first = next(iter(next(iter(results.throughput.values())).values()))
        out.append(
            (
                f"Throughput ({first['producers']} producer threads posting {first['turns']} "
                "turns as fast as they can, each in its own conversation)",
                ["config", "worker processes", "turns", "posting s", "elapsed s", "turns/s",
                 "p50 / p95 ms", "runs", "broker after"],
                tp_rows,
            )
        )  # fmt: skip
    if complete:
        out.append(("Targets", ["target", "config", "measured", "status"], targets(results)))
    load_rows = [[phase, v["machine_cores"], v["bench_cores"], v["other_cores"],
                  "; ".join(v["busy"]) or "-"] for phase, v in results.load.items()]  # fmt: skip
    out.append(
        (
            "CPU during each phase (cores of 2; other = machine - this benchmark)",
            ["phase", "machine", "benchmark", "other", "busy other processes"],
            load_rows,
        )
    )
    return out


def print_report(results: Results, markdown: bool) -> None:
    m = results.machine
    print(f"\nmachine: {m['nproc']} cores, {m['cpu']}, {m['ram_gib']} GiB; {m['date']}")
    quiet = "quiet" if results.quiet_before else "NOT quiet: " + "; ".join(results.heavy_before)
    print(f"machine before the run: {quiet}")
    for title, headers, rows in tables(results):
        print(f"\n{title}\n{text_table(headers, rows)}")
    for name, problems in results.worker_problems.items():
        if problems:
            print(f"\nworker {name} log problems:\n" + "\n".join(problems[:20]))
    if markdown:
        print("\n--- markdown ---\n")
        print(f"Code: commit {m['commit']} plus {m['uncommitted_app_files']} uncommitted "
              "application files (others were editing while this ran).\n")  # fmt: skip
        print(f"Machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, Python "
              f"{m['python']}. Run: {m['date']}. Machine before the run: {quiet}.\n")  # fmt: skip
        print(f"```sh\n{results.command}\n```\n")
        for title, headers, rows in tables(results):
            print(f"**{title}**\n\n{markdown_table(headers, rows)}\n")


# --- main -------------------------------------------------------------------------------------


@contextlib.contextmanager
def metered(results: Results, phase: str) -> Iterator[None]:
    meter = LoadMeter()
    meter.start()
    yield
    results.load[phase] = meter.stop()


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    command = "DEBUG=1 HF_HUB_OFFLINE=1 .venv/bin/python -m bench.turns " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    log("checking that no other benchmark or test run is busy")
    quiet, heavy = wait_until_quiet(args.wait_quiet_minutes, database=DATABASE)
    results = Results(machine_and_commit(), command.strip(), quiet, heavy)
    env = servers_environment(DATABASE, redis_db=REDIS_DB, workers_queue_prefix="bench-turns")
    log(f"database {DATABASE}, redis db {REDIS_DB}, queue {env['queue']}")
    customer = django_setup()
    messages = Messages(args.seed)
    try:
        run(args, results, customer, messages)
    finally:
        STARTED.stop_all()
        # Whatever finished is reported, also when a later phase failed.
        print_report(results, args.markdown)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(results), indent=2, ensure_ascii=False))
        log(f"saved {args.json}")
    return 0


def run(args: argparse.Namespace, results: Results, customer: Any, messages: Messages) -> None:
    from django.core.management import call_command

    configs = [SHIPPED] if args.no_variant else list(CONFIGS)
    for config in configs:
        label = "shipped" if config == SHIPPED else "1thread"
        for procs in args.worker_processes:
            # Others may add migrations while this runs; the worker starts from the code on disk.
            call_command("migrate", verbosity=0)
            log(f"{config}: starting a worker with {procs} pool process(es)")
            worker = Worker(procs, CONFIGS[config], label).start()
            log("worker ready; warming up")
            warm = messages.take(max(args.warmup, 10 * procs))
            burst(customer, warm, producers=min(procs * 2, len(warm)))
            if procs == args.worker_processes[0]:
                sequential_turns(customer, messages.take(args.warmup))
                measure_latency(args, results, customer, messages, config)
                if config == SHIPPED:
                    measure_shipped_extras(args, results, customer, messages)
                log(f"{config}: the graph alone, in-process")
                with metered(results, f"{config}: graph alone"):
                    threads = 1 if CONFIGS[config] else None
                    results.graph[config], _ = graph_alone(
                        customer, messages.take(args.parts + 20), 20, threads
                    )
            log(f"{config}: throughput with {procs} process(es)")
            with metered(results, f"{config}: throughput, {procs} process(es)"):
                results.throughput.setdefault(config, {})[str(procs)] = burst(
                    customer, messages.take(args.producers * args.per_producer), args.producers
                )
            worker.stop()
            results.worker_problems[f"{label}-{procs}p"] = worker.problems()


def measure_latency(
    args: argparse.Namespace, results: Results, customer: Any, messages: Messages, config: str
) -> None:
    log(f"{config}: latency, {args.turns} sequential turns")
    sessions_before = db_sessions()
    with metered(results, f"{config}: latency"):
        turns = sequential_turns(customer, messages.take(args.turns))
    sessions = db_sessions() - sessions_before
    bad = [t for t in turns if t.status != "succeeded" or t.reply_created is None]
    routes: dict[str, int] = {}
    for turn in turns:
        routes[turn.route] = routes.get(turn.route, 0) + 1
    results.latency[config] = {
        "reply_row": summary_ms([t.reply_ms for t in turns]),
        "client_told": summary_ms([t.told_s * 1000 if t.told_s else None for t in turns]),
        "posted": summary_ms([t.posted_s * 1000 for t in turns]),
        "routes": routes,
        "not_succeeded": len(bad),
        "db_sessions_per_turn": round(sessions / len(turns), 2),
    }
    results.breakdown[config] = breakdown(turns)


def measure_shipped_extras(
    args: argparse.Namespace, results: Results, customer: Any, messages: Messages
) -> None:
    """HTTP, the Celery round trip, the graph's pieces and the database work (as shipped)."""
    if args.http_turns:
        log(f"HTTP: {args.http_turns} turns against gunicorn")
        with metered(results, "http"):
            results.http = http_turns(customer, messages.take(args.http_turns + 5), warmup=5)
    with metered(results, "parts alone"):
        log("parts alone: Celery round trip")
        results.ping = ping_round_trips(args.parts)
        log("parts alone: the graph's pieces")
        results.graph_pieces = graph_pieces(messages.take(2 * (args.parts + 5)), args.parts)
        log("parts alone: the database work")
        _, sales = graph_alone(customer, messages.take(30), 0, None)
        results.db = db_alone(customer, messages.take(args.parts + 10), sales, args.parts)


if __name__ == "__main__":
    sys.exit(main())
