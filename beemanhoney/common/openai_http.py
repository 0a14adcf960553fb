"""The HTTP client every OpenAI client here sends through: the waits a 429 or 503 asks for
(``Retry-After``) held to ``OPENAI_RETRY_AFTER_MAX_SECONDS``.

The ``openai`` client honours a ``Retry-After`` of up to two minutes before its retry: one such
answer held a customer's turn (or a search, a Celery task) that long, and a turn's soft time
limit then cut it off with an apology, where the fallback provider would have answered at once.
Capped, the retry comes sooner; if the API still refuses it, the turn falls back.
"""

from __future__ import annotations

import functools

import httpx2
from django.conf import settings

RETRY_AFTER_HEADERS = {"retry-after-ms": 1000.0, "retry-after": 1.0}


def retry_after_capped(response: httpx2.Response) -> None:
    longest = settings.OPENAI_RETRY_AFTER_MAX_SECONDS
    for header, per_second in RETRY_AFTER_HEADERS.items():
        value = response.headers.get(header)
        if value is None:
            continue
        try:
            asked = float(value) / per_second
        except ValueError:
            asked = float("inf")  # an HTTP date: a wait of its own choosing
        if not asked <= longest:
            response.headers[header] = f"{longest * per_second:g}"


@functools.cache
def openai_http_client() -> httpx2.Client:
    """One per process, shared by the clients (each request sets its own timeout)."""
    import openai

    return openai.DefaultHttpxClient(event_hooks={"response": [retry_after_capped]})
