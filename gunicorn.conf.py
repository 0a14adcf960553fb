"""Gunicorn reads this file from the folder it starts in (the project, or /app in the image).

The cyclic garbage of a request (DRF's request, view and serializer objects point at each
other) is collected after its response has been sent, not in the middle of a later request: at
Python's default threshold a young-generation pass ran every ~1.5 searches, and a 5-7 ms
middle-generation pass every ~15, which is where a search's p95 sat (docs/benchmarks/journal.md,
"2026-12-01 afternoon: the request path, second pass").
"""

import gc
import os
from typing import Any

# Automatic collections stay as a safety net for long requests (event streams, imports).
YOUNG_GENERATION_THRESHOLD = 20_000

# A new worker loads torch and the embedding model before it answers the master's heartbeat
# (the first boot also exports the ONNX query graph, under a file lock): on a small host that
# can pass the default 30 s, and the master would kill and restart workers in a loop. With
# gthread workers this bounds only that heartbeat, not how long a request or stream may last.
timeout = 120

# A search embeds its query on two threads in a web worker (one elsewhere, EMBEDDING_QUERY_THREADS):
# by the time a request comes, other work on the host has pushed the model's weights out of the
# CPU's cache, and one thread reading them back took ~6.5 ms where two take ~4. Paired over HTTP
# at 100k, 1.4-1.7 ms less per new query (faster on 82-88%), and no fewer searches/s with four or
# eight clients at once; in Celery workers, two processes embedding at once, two threads each cost
# 8-15% of the turns/s (docs/benchmarks/journal.md, "2026-12-07, 14:24: two threads").
raw_env = [] if "EMBEDDING_QUERY_THREADS" in os.environ else ["EMBEDDING_QUERY_THREADS=2"]

# gunicorn 25+ makes a control socket for `gunicornc` in $XDG_RUNTIME_DIR or ~/.gunicorn/ (a
# folder in the home of whoever starts it, shared by every gunicorn they start). Nothing here
# uses it.
control_socket_disable = True

# gunicorn's default format, then the X-Forwarded-For the proxy sent (%(h)s is its address), the
# request's id, as the answer gave it (beemanhoney.common.request_ids), and how long it took.
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" "%({x-forwarded-for}i)s"'
    ' request_id="%({x-request-id}o)s" duration_ms=%(M)s'
)


def on_starting(server: Any) -> None:
    """Settings the environment got wrong stop the master before it starts workers (each failed
    to boot, and the master exited for a restart policy to start it again)."""
    from beemanhoney.startup import settings_loaded_or_exit

    settings_loaded_or_exit()


def post_worker_init(worker: Any) -> None:
    streams_check(worker)
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)


def streams_check(worker: Any) -> None:
    """Event streams hold a thread each for minutes: a process whose every thread may hold one
    answers nothing else once they are open, so a worker started that way says so. It still
    starts (the benchmarks run a few threads and open no streams)."""
    from django.conf import settings  # read once the worker has loaded the project

    streams, threads = settings.SSE_MAX_STREAMS_PER_PROCESS, worker.cfg.threads
    if streams >= threads:
        worker.log.warning(
            "SSE_MAX_STREAMS_PER_PROCESS (%s) is not below gunicorn's --threads (%s,"
            " GUNICORN_THREADS): open event streams could hold every thread",
            streams,
            threads,
        )


def post_request(worker: object, req: object, environ: dict, resp: object) -> None:
    gc.collect(1)
