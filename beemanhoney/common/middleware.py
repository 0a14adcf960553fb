"""Django's CommonMiddleware and ConditionalGetMiddleware as the API needs them, and a limit on
the body that every API route keeps."""

import json
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.middleware import common, http
from django.utils.cache import get_conditional_response, set_response_etag
from django.utils.http import escape_leading_slashes, parse_http_date_safe

from beemanhoney.common.exceptions import error_body, refused_request
from beemanhoney.common.preconditions import PreconditionFailed
from beemanhoney.common.views import is_api_path


class CommonMiddleware(common.CommonMiddleware):
    """``APPEND_SLASH`` redirects ``/api/conversations`` with a 301, which clients follow with a
    GET: a POST's message was lost unsaid (and with DEBUG on it was a 500 page). Under ``/api/``
    the redirect is a 308, which keeps the method and the body, with a JSON body saying where."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if (
            response.status_code == 404
            and is_api_path(request.path)
            and self.should_redirect_with_slash(request)
        ):
            location = escape_leading_slashes(request.get_full_path(force_append_slash=True))
            return HttpResponsePermanentRedirect(
                location,
                preserve_request=True,
                content=json.dumps(
                    error_body(f"This URL ends with a slash: {location}", "slash_required")
                ),
                content_type="application/json",
            )
        return super().process_response(request, response)


class ConditionalGetMiddleware(http.ConditionalGetMiddleware):
    """Django's, whose 412 (a GET whose ``If-Match`` names another ETag) is, under ``/api/``,
    the API's JSON error, as a PATCH's is, not an empty ``text/html`` answer; and which answers
    an API ``HEAD`` as its ``GET``: the same ETag, and a 304 for it. Django leaves ``HEAD``
    alone, as a body it cannot see; the API's views render a ``HEAD``'s body as a ``GET``'s,
    and the server drops it."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if request.method == "HEAD" and is_api_path(request.path):
            response = self._head_answered(request, response)
        else:
            response = super().process_response(request, response)
        if response.status_code != 412 or not is_api_path(request.path):
            return response
        failed = PreconditionFailed()
        return JsonResponse(error_body(failed.message, failed.code), status=412)

    def _head_answered(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if not isinstance(response, HttpResponse):  # a stream: no body to tag
            return response
        if self.needs_etag(response) and not response.has_header("ETag"):
            set_response_etag(response)  # none for an empty body
        etag = response.get("ETag")
        last_modified = parse_http_date_safe(response.get("Last-Modified") or "")
        if etag or last_modified:
            conditional = get_conditional_response(
                request, etag=etag, last_modified=last_modified, response=response
            )
            return conditional or response
        return response


class BodySizeLimitMiddleware:
    """Under ``/api/``, a body declared larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is a 413
    whatever the view: the limit was checked only where a view read the body, so a 3 MB body
    to a route that reads none (a guest sign-up, a close) was answered 201 and 200."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        declared = request.META.get("CONTENT_LENGTH") or "0"
        too_large = limit is not None and declared.isdigit() and int(declared) > limit
        if too_large and is_api_path(request.path):
            refusal = refused_request(RequestDataTooBig())
            return JsonResponse(error_body(refusal.detail, refusal.code), status=refusal.status)
        return self.get_response(request)
