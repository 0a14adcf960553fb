import json
import re
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from django.conf import settings
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import APIException
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import selectors, services
from agents.api.event_stream import (
    SlotHoldingStream,
    release_database_connection,
    run_event_stream,
    run_stream_seen_to_the_end,
    stream_slots,
)
from agents.api.serializers import RunOutputSerializer
from agents.models import AgentRun
from agents.run_stream import run_finished_wait
from beemanhoney.common.exceptions import error_responses
from beemanhoney.common.permissions import authenticated_user
from beemanhoney.common.serializers import PlainFloatField, QueryParamsSerializer

EVENT_ID = re.compile(r"(\d{1,20})-(\d{1,20})")
REDIS_ID_PART_MAX = 2**64 - 1


def _event_id(header: str) -> str:
    """A Redis Stream id from ``Last-Event-ID``; "0" (from the start) for anything else."""
    match = EVENT_ID.fullmatch(header)
    if match is None or any(int(part) > REDIS_ID_PART_MAX for part in match.groups()):
        return "0"
    return header


class ServiceBusy(APIException):
    status_code = 503
    default_detail = "Too many open event streams here; retry shortly."
    default_code = "streams_busy"
    wait = 2  # seconds, sent as Retry-After


def _own_run(request: Request, run_id: UUID) -> AgentRun:
    run = selectors.agent_run_get(owner=authenticated_user(request), run_id=run_id)
    if run is None:
        raise Http404
    return run


class RunDetailApi(APIView):
    """A run and its reply. ``?wait=N`` holds the request up to N seconds until it finishes."""

    class FilterSerializer(QueryParamsSerializer):
        wait = PlainFloatField(required=False, min_value=0, default=0)

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
        # A wait holds a thread as an event stream does, so it takes one of the same slots;
        # with none free it answers at once, as a client polling would be answered.
        if (
            not run.is_finished
            and wait > 0
            and stream_slots.acquire(settings.SSE_MAX_STREAMS_PER_PROCESS)
        ):
            try:
                run_finished_wait(
                    run_id=str(run.pk), timeout=wait, is_finished=lambda: _finished(run)
                )
            finally:
                stream_slots.release()
            run.refresh_from_db()
        return Response(RunOutputSerializer(run, context={"request": request}).data)


def _finished(run: AgentRun) -> bool:
    """Whether the run has finished, read without keeping the database connection: a wait
    blocks on Redis next."""
    try:
        return AgentRun.objects.get(pk=run.pk).is_finished
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
    """Lets clients ask for ``text/event-stream``; errors are still sent as JSON text."""

    media_type = "text/event-stream"
    format = "sse"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        return json.dumps(data).encode()


class RunEventsApi(APIView):
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
            # 204 is what tells an EventSource to stop reconnecting.
            return HttpResponse(status=204)
        if not stream_slots.acquire(settings.SSE_MAX_STREAMS_PER_PROCESS):
            raise ServiceBusy
        response = StreamingHttpResponse(
            SlotHoldingStream(run_event_stream(run=run, after=after)),
            content_type="text/event-stream",
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass events through unbuffered
        return response
