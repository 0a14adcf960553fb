from uuid import UUID

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import selectors, services
from agents.api.serializers import RunOutputSerializer
from agents.models import AgentRun
from agents.run_events import run_finished_wait
from beemanhoney.common.exceptions import error_responses


def _own_run(request: Request, run_id: UUID) -> AgentRun:
    run = selectors.agent_run_get(owner=request.user, run_id=run_id)
    if run is None:
        raise Http404
    return run


class RunDetailApi(APIView):
    """A run and its reply. ``?wait=N`` holds the request up to N seconds until it finishes."""

    class FilterSerializer(serializers.Serializer):
        wait = serializers.FloatField(required=False, min_value=0, default=0)

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
        if not run.is_finished and wait > 0:
            run_finished_wait(
                run_id=str(run.pk),
                timeout=wait,
                is_finished=lambda: AgentRun.objects.get(pk=run.pk).is_finished,
            )
            run.refresh_from_db()
        return Response(RunOutputSerializer(run).data)


class RunCancelApi(APIView):
    @extend_schema(
        operation_id="runs_cancel",
        request=None,
        responses={200: RunOutputSerializer, **error_responses(401, 404, 409, 429)},
    )
    def post(self, request: Request, run_id: UUID) -> Response:
        run = services.agent_run_cancel(run=_own_run(request, run_id))
        return Response(RunOutputSerializer(run).data)
