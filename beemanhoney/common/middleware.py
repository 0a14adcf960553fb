"""Django's CommonMiddleware and ConditionalGetMiddleware, answering the API as a client needs."""

import json

from django.http import HttpRequest, HttpResponsePermanentRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.middleware import common, http
from django.utils.http import escape_leading_slashes

from beemanhoney.common.exceptions import error_body
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
    the API's JSON error, as a PATCH's is, not an empty ``text/html`` answer."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        response = super().process_response(request, response)
        if response.status_code != 412 or not is_api_path(request.path):
            return response
        failed = PreconditionFailed()
        return JsonResponse(error_body(failed.message, failed.code), status=412)
