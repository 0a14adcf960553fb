"""Error pages: API clients get JSON in the API's error shape, browsers get HTML. The schema
view answers its errors in JSON too."""

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import translation
from django.views import defaults
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SCHEMA_KWARGS, SpectacularAPIView
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from beemanhoney.common.exceptions import error_body, refused_request
from beemanhoney.common.renderers import JSONRenderer


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def _is_api(request: HttpRequest) -> bool:
    return is_api_path(request.path)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's answer to a request it refuses before any view (a disallowed host, say): JSON
    for the API too."""
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    refusal = refused_request(exception)
    return JsonResponse(error_body(refusal.detail, refusal.code), status=refusal.status)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("Not found.", "not_found"), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("A server error occurred.", "server_error"), status=500)
    return defaults.server_error(request)


class JsonErrorsMixin:
    """For an APIView whose success is not JSON (the schema's YAML, an event stream): its
    errors are JSON in the API's error shape, as every other API error, not rendered as what
    the client asked the success for."""

    request: Any

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)  # type: ignore[misc]
        # finalize_response renders with the request's renderer, negotiated for the success.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class SchemaApi(JsonErrorsMixin, SpectacularAPIView):
    """The OpenAPI schema: YAML, or JSON to a client that accepts it. Its errors (a ``POST``'s
    405, an ``Accept`` it cannot serve's 406, a 429) are JSON: drf-spectacular rendered them
    as the schema, in YAML."""

    @extend_schema(**SCHEMA_KWARGS)  # as drf-spectacular's own: left out of the schema
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """A ``lang`` that is no language Django knows is a 400 naming it: drf-spectacular
        translated under any text given, and Django keeps a catalogue for each new one as long
        as the process lives (a few KB a request, a worker's memory filled at will)."""
        if lang := request.GET.get("lang"):
            try:
                translation.get_supported_language_variant(lang)
            except LookupError:
                raise ValidationError({"lang": ["Not a language code, such as en-gb."]}) from None
        return super().get(request, *args, **kwargs)

    def _get_version_parameter(self, request: Request) -> None:
        """None: the API has one version, and a ``version`` parameter is ignored as any unknown
        one is. drf-spectacular wrote its text into a header's file name: a line break in it
        was a 500."""
        return None
