import json
import logging
import re
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import APIException
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import selectors, services
from agents.api.event_stream import (
    release_database_connection,
    run_event_stream,
    run_stream_seen_to_the_end,
)
from agents.api.serializers import RunOutputSerializer
from agents.api.stream_slots import (
    SlotHoldingStream,
    StreamSlotsFull,
    UserStreamSlot,
    slots_release,
    slots_take,
)
from agents.models import AgentRun
from agents.run_stream import run_finished_wait
from beemanhoney.common.exceptions import error_responses
from beemanhoney.common.permissions import authenticated_user
from beemanhoney.common.renderers import JSONRenderer
from beemanhoney.common.serializers import PlainFloatField, QueryParamsSerializer
from beemanhoney.common.views import JsonErrorsMixin

logger = logging.getLogger(__name__)

EVENT_ID = re.compile(r"(\d{1,20})-(\d{1,20})")
REDIS_ID_PART_MAX = 2**64 - 1


def _event_id(header: str) -> str:
    """A Redis Stream id from ``Last-Event-ID``; "0" (from the start) for anything else,
    Redis's largest id included (Redis refuses to read after it)."""
    match = EVENT_ID.fullmatch(header)
    if match is None:
        return "0"
    parts = [int(part) for part in match.groups()]
    if any(part > REDIS_ID_PART_MAX for part in parts) or min(parts) == REDIS_ID_PART_MAX:
        return "0"
    return header


class ServiceBusy(APIException):
    status_code = 503
    default_detail = "Too many open event streams here; retry shortly."
    default_code = "streams_busy"
    wait = 2  # seconds, sent as Retry-After


class EventsUnavailable(APIException):
    status_code = 503
    default_detail = (
        "Live events cannot be read right now: read the run (GET /api/runs/{id}/), or retry"
        " shortly."
    )
    default_code = "events_unavailable"
    wait = 2  # seconds, sent as Retry-After


class TooManyStreams(APIException):
    status_code = 429
    default_detail = (
        "Too many event streams and waits open for this account; close one or retry shortly."
    )
    default_code = "too_many_streams"

    def __init__(self) -> None:
        super().__init__()
        # A closed tab's stream frees its slot once a heartbeat finds the client gone.
        self.wait = settings.SSE_HEARTBEAT_SECONDS  # sent as Retry-After


def _own_run(request: Request, run_id: UUID) -> AgentRun:
    run = selectors.agent_run_get(owner=authenticated_user(request), run_id=run_id)
    if run is None:
        raise Http404
    return run


class RunDetailApi(APIView):
    """A run and its reply. ``?wait=N`` holds the request up to N seconds until it finishes;
    a user's waits and event streams share ``SSE_MAX_STREAMS_PER_USER`` slots, and a wait
    finding none free (or none in this process) answers at once, as a poll would be answered."""

    class FilterSerializer(QueryParamsSerializer):
        wait = PlainFloatField(
            required=False,
            min_value=0,
            default=0,
            help_text=(
                "Hold the request up to this many seconds until the run finishes. With the"
                " user's event streams and waits at their limit, it answers at once."
            ),
        )

    @extend_schema(
        operation_id="runs_retrieve",
        parameters=[FilterSerializer],
        responses={200: RunOutputSerializer, **error_responses(400, 401, 404, 429)},
    )
    def get(self, request: Request, run_id: UUID) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        run = _own_run(request, run_id)
        wait = min(params.validated_data["wait"], settings.RUN_WAIT_MAX_SECONDS)
        if not run.is_finished and wait > 0 and _wait_holding_slots(request, run, wait):
            run = _own_run(request, run_id)  # 404 if deleted meanwhile with its conversation
        return Response(RunOutputSerializer(run, context={"request": request}).data)


def _wait_holding_slots(request: Request, run: AgentRun, wait: float) -> bool:
    """Wait for the run holding one of the user's slots and one of the process's, as a stream
    does (a wait holds a thread as a stream does); whether there was one of each to hold.

    With Redis unreachable there is neither a slot to count nor a stream to block on: the
    request answers at once, and the client polls.
    """
    try:
        slot = slots_take(user_id=authenticated_user(request).pk, seconds=wait)
    except (redis.RedisError, StreamSlotsFull):
        return False
    try:
        run_finished_wait(run_id=str(run.pk), timeout=wait, is_finished=lambda: _finished(run))
    finally:
        slots_release(slot=slot)
    return True


def _finished(run: AgentRun) -> bool:
    """Whether the run has finished (or is gone), read without keeping the database
    connection: a wait blocks on Redis next."""
    try:
        found = AgentRun.objects.filter(pk=run.pk).first()
        return found is None or found.is_finished
    finally:
        release_database_connection()


class RunCancelApi(APIView):
    @extend_schema(
        operation_id="runs_cancel",
        request=None,
        responses={200: RunOutputSerializer, **error_responses(401, 404, 409, 429)},
    )
    def post(self, request: Request, run_id: UUID) -> Response:
        run = services.agent_run_cancel(run=_own_run(request, run_id))
        return Response(RunOutputSerializer(run, context={"request": request}).data)


class EventStreamRenderer(BaseRenderer):
    """Lets clients ask for ``text/event-stream``. The stream is the view's own response, and
    its errors are JSON (``JsonErrorsMixin``): nothing is rendered with this but by mistake."""

    media_type = "text/event-stream"
    format = "sse"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        return json.dumps(data).encode()


class RunEventsApi(JsonErrorsMixin, APIView):
    """The run's live events as Server-Sent Events, resumable with ``Last-Event-ID``."""

    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(
        operation_id="runs_events",
        parameters=[
            OpenApiParameter(
                "Last-Event-ID", str, OpenApiParameter.HEADER, required=False,
                description="Resume after this event id: missed events are replayed first.",
            )
        ],
        responses={
            (200, "text/event-stream"): OpenApiTypes.STR,
            204: OpenApiResponse(description="The client has had the run's final event."),
            **error_responses(401, 404, 429, 503),
        },
    )  # fmt: skip
    def get(self, request: Request, run_id: UUID) -> HttpResponseBase:
        run = _own_run(request, run_id)
        after = _event_id(request.headers.get("Last-Event-ID", ""))
        if run_stream_seen_to_the_end(run=run, after=after):
            return _seen_to_the_end()
        user_slot = _stream_slots_take(authenticated_user(request))
        return _event_stream_headed(
            StreamingHttpResponse(
                SlotHoldingStream(run_event_stream(run=run, after=after), user_slot=user_slot)
            )
        )

    def head(self, request: Request, run_id: UUID) -> HttpResponseBase:
        """What a GET answers, without the stream: a server sends no body to a HEAD, so a
        stream's heartbeats never failed and it held its thread and slots to its time limit."""
        run = _own_run(request, run_id)
        after = _event_id(request.headers.get("Last-Event-ID", ""))
        if run_stream_seen_to_the_end(run=run, after=after):
            return _seen_to_the_end()
        return _event_stream_headed(HttpResponse())


def _seen_to_the_end() -> HttpResponse:
    """204, what tells an EventSource to stop reconnecting: no body, so no Content-Type."""
    response = HttpResponse(status=204)
    del response["Content-Type"]
    return response


def _event_stream_headed(response: HttpResponseBase) -> HttpResponseBase:
    response["Content-Type"] = "text/event-stream"
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through unbuffered
    return response


def _stream_slots_take(user: User) -> UserStreamSlot:
    """One of the user's slots, then one of the process's (or neither): 429 past the user's
    limit, 503 with the process full (``streams_busy``) or Redis, which the stream reads from,
    unreachable (``events_unavailable``)."""
    try:
        return slots_take(user_id=user.pk, seconds=settings.SSE_MAX_STREAM_SECONDS)
    except redis.RedisError:
        logger.warning("run_events.user_slots_unreadable", extra={"user_id": user.pk})
        raise EventsUnavailable from None
    except StreamSlotsFull as full:
        if not full.per_user:
            raise ServiceBusy from None
        logger.info("run_events.too_many_streams", extra={"user_id": user.pk})
        raise TooManyStreams from None
