"""One id per HTTP request, to find everything it caused in the logs.

The id is the request's own ``X-Request-ID`` when it sends a plausible one (a proxy's or a
client's: letters, digits and ``._:-``, at most 128), else a new one. It is in the answer's
``X-Request-ID``, on every log line written while the request is served (Django's own "Not
Found" among them, and an event stream's, until it closes), and on those of the Celery tasks
the request queued, in the worker (an agent run's ``agent_run.finished`` line, say: the run
keeps its request's id and its task carries that one, whichever process dispatches it).

It lives from Django's ``request_started`` signal to its ``request_finished`` one, which wrap
everything a WSGI request runs, the middleware and the response's closing included.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase

if TYPE_CHECKING:
    from celery import Task

REQUEST_ID_HEADER = "X-Request-ID"
TASK_HEADER = "request_id"
_PLAUSIBLE = re.compile(r"[A-Za-z0-9._:-]{1,128}")

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


def request_id_from(header: str | None) -> str:
    """``header`` when it is a plausible id, else a new one."""
    if header is not None and _PLAUSIBLE.fullmatch(header):
        return header
    return uuid.uuid4().hex


def request_started(environ: dict[str, Any] | None = None, **kwargs: Any) -> None:
    current_request_id.set(request_id_from((environ or {}).get("HTTP_X_REQUEST_ID")))


def request_finished(**kwargs: Any) -> None:
    current_request_id.set(None)


def task_published(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Celery's ``before_task_publish``: the task message carries the request's id."""
    request_id = current_request_id.get()
    if request_id is not None and headers is not None:
        headers.setdefault(TASK_HEADER, request_id)


def task_started(task: Task | None = None, **kwargs: Any) -> None:
    """Celery's ``task_prerun``: the id of the request that queued the task, or none."""
    request_id = getattr(task.request, TASK_HEADER, None) if task is not None else None
    current_request_id.set(request_id if isinstance(request_id, str) and request_id else None)


def task_finished(**kwargs: Any) -> None:
    """Celery's ``task_postrun``: no id until the next task says one."""
    current_request_id.set(None)


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = current_request_id.get()
        if request_id is None:  # a request no handler announced (a test's RequestFactory)
            request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to a record written while a request or its task is being served."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current_request_id.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True
