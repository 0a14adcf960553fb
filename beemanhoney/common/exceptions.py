"""One error shape for the API: ``{"detail": ..., "code": ..., "errors": {field: [messages]},
"error_codes": {field: [codes]}}``.

``detail`` is a sentence for people; ``code`` a stable word for programs (``not_found``,
``throttled``, ``too_many_streams``...), so that clients need not match the sentence. ``errors``
is there when fields are at fault, and ``error_codes`` beside it, shaped as it is, each message
in its place given by its code (``required``, ``invalid``, ``max_length``, ``unknown_field``...):
what a client's form shows against which field, and why, without reading the sentences."""

import logging
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.exceptions import ErrorDetail
from rest_framework.fields import get_error_detail
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A business rule refused the operation; the API answers 400 (or ``status_code``)."""

    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid",
        field: str | None = None,
        status_code: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
        if status_code is not None:
            self.status_code = status_code


class DeletedMeanwhile(ApplicationError):
    """What a service raises for a row another request deleted while it ran (a conversation
    deleted in one tab while a message is posted in another): the 404 the request would have
    had a moment later."""

    def __init__(self) -> None:
        super().__init__("Not found.", code="not_found", status_code=status.HTTP_404_NOT_FOUND)


def error_body(detail: str, code: str, errors: dict[str, Any] | None = None) -> dict[str, Any]:
    """An error answer's body; ``errors`` only when fields are at fault, with their
    ``error_codes`` (each message's own code where it has one, else ``code``)."""
    body: dict[str, Any] = {"detail": detail, "code": code}
    if errors:
        body["errors"] = errors
        body["error_codes"] = _codes_of(errors, default=code)
    return body


def _codes_of(errors: Any, *, default: str) -> Any:
    """``errors`` with each message replaced by its code (DRF's ``ErrorDetail`` carries one)."""
    if isinstance(errors, dict):
        return {key: _codes_of(value, default=default) for key, value in errors.items()}
    if isinstance(errors, list):
        return [_codes_of(value, default=default) for value in errors]
    return getattr(errors, "code", None) or default


class DatabaseUnavailable(exceptions.APIException):
    """The database could not answer (unreachable, restarting, a deadlock): a 503 the client
    may retry, not a 500 with a traceback logged for each request while it is down."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The shop cannot answer this right now; retry shortly."
    default_code = "service_unavailable"
    wait = 5  # seconds, sent as Retry-After


class Refusal(NamedTuple):
    status: int
    code: str
    detail: str


def refused_request(exc: Exception) -> Refusal:
    """The answer to a request Django refuses (as suspicious: a body over the upload limit, too
    many fields, a disallowed host). The exception's own text can name settings, which is not
    for clients."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Refusal(413, "request_too_large", f"The request body is larger than {limit} bytes.")
    if isinstance(exc, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return Refusal(400, "too_many_fields", f"The request has more than {limit} fields.")
    if isinstance(exc, TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        return Refusal(400, "too_many_files", f"The request has more than {limit} files.")
    return Refusal(400, "bad_request", "Bad request.")


def error_code(exc: exceptions.APIException, data: Any) -> str:
    """``exc``'s code, or the one its ``data`` (its answer's body or its detail) names."""
    if isinstance(data, dict) and isinstance(data.get("code"), str):
        return str(data["code"])  # simplejwt's, more telling than "authentication_failed"
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, SuspiciousOperation):
        # Raised while a view reads the body: answered here, or Django would (in HTML with
        # DEBUG on, where handler400 is not used).
        refusal = refused_request(exc)
        return Response(error_body(refusal.detail, refusal.code), status=refusal.status)
    if isinstance(exc, DjangoValidationError):
        # With each message's own code (a sku taken: "unique").
        exc = exceptions.ValidationError(get_error_detail(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, OperationalError | InterfaceError):
        logger.warning("api.database_unavailable", extra={"error": str(exc)[:300]})
        exc = DatabaseUnavailable()
    elif isinstance(exc, ApplicationError):
        if exc.field and exc.status_code == status.HTTP_400_BAD_REQUEST:
            # A field refused by a service reads as one refused by a serializer: the field's
            # own code in error_codes, "invalid" above it.
            refused = {exc.field: [ErrorDetail(exc.message, code=exc.code)]}
            return Response(error_body("Invalid input.", "invalid", refused), status=400)
        errors = {exc.field: [exc.message]} if exc.field else None
        return Response(error_body(exc.message, exc.code, errors), status=exc.status_code)

    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    data = response.data
    code = error_code(exc, data)
    if isinstance(exc, exceptions.ValidationError):
        errors = data if isinstance(data, dict) else {"non_field_errors": data}
        response.data = error_body("Invalid input.", code, errors)
    elif isinstance(data, dict):
        # simplejwt adds "messages" (which token class refused it, and why) to its 401s: the
        # one error shape keeps the sentence, and the field that was refused when the view
        # names one (a refresh token sent in the body).
        response.data = error_body(
            str(data.get("detail", exc.default_detail)), code, data.get("errors")
        )
    return response


class ErrorSerializer(serializers.Serializer):
    """The OpenAPI shape of every error answer."""

    detail = serializers.CharField()
    code = serializers.CharField()
    # The metaclass takes declared fields off the class, so this does not hide ``.errors``.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False
    )
    error_codes = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


def error_responses(*codes: int) -> dict[int, type[ErrorSerializer]]:
    return dict.fromkeys(codes, ErrorSerializer)
