"""Gunicorn reads this file from the folder it starts in (the project, or /app in the image).

The cyclic garbage of a request (DRF's request, view and serializer objects point at each
other) is collected after its response has been sent, not in the middle of a later request: at
Python's default threshold a young-generation pass ran every ~1.5 searches, and a 5-7 ms
middle-generation pass every ~15, which is where a search's p95 sat (docs/BENCHMARKS.md).
"""

import gc

# Automatic collections stay as a safety net for long requests (event streams, imports).
YOUNG_GENERATION_THRESHOLD = 20_000

# A new worker loads torch and the embedding model before it answers the master's heartbeat
# (the first boot also exports the ONNX query graph, under a file lock): on a small host that
# can pass the default 30 s, and the master would kill and restart workers in a loop. With
# gthread workers this bounds only that heartbeat, not how long a request or stream may last.
timeout = 120

# gunicorn's default format, then the X-Forwarded-For the proxy sent (%(h)s is its address) and
# the request's id, as the answer gave it (beemanhoney.common.request_ids).
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" "%({x-forwarded-for}i)s"'
    ' request_id="%({x-request-id}o)s"'
)


def post_worker_init(worker: object) -> None:
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)


def post_request(worker: object, req: object, environ: dict, resp: object) -> None:
    gc.collect(1)
