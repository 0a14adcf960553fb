"""One error shape for the API: ``{"detail": ..., "errors": {field: [messages]}}``."""

from typing import Any

from django.conf import settings
from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    """A business rule refused the operation; the API answers 400 (or ``status_code``)."""

    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, field: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if status_code is not None:
            self.status_code = status_code


def refused_request(exc: Exception) -> tuple[int, str]:
    """The status and detail for a request Django refuses (as suspicious: a body over the
    upload limit, too many fields, a disallowed host). The exception's own text can name
    settings, which is not for clients."""
    if isinstance(exc, RequestDataTooBig):
        return 413, f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
    if isinstance(exc, TooManyFieldsSent):
        return 400, f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields."
    if isinstance(exc, TooManyFilesSent):
        return 400, f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files."
    return 400, "Bad request."


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, SuspiciousOperation):
        # Raised while a view reads the body: answered here, or Django would (in HTML with
        # DEBUG on, where handler400 is not used).
        status_code, detail = refused_request(exc)
        return Response({"detail": detail}, status=status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, ApplicationError):
        errors = {exc.field: [exc.message]} if exc.field else {}
        return Response({"detail": exc.message, "errors": errors}, status=exc.status_code)

    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.AuthenticationFailed) and isinstance(response.data, dict):
        # simplejwt adds "code" and "messages" (which token class refused it, and why) to its
        # 401s: the one error shape keeps only the sentence, and the field that was refused
        # when the view names one (a refresh token sent in the body).
        data = response.data
        response.data = {"detail": data.get("detail", exc.default_detail)}
        if "errors" in data:
            response.data["errors"] = data["errors"]
    if isinstance(exc, exceptions.ValidationError):
        errors = (
            response.data
            if isinstance(response.data, dict)
            else {"non_field_errors": response.data}
        )
        response.data = {"detail": "Invalid input.", "errors": errors}
    return response


class ErrorSerializer(serializers.Serializer):
    """The OpenAPI shape of every error answer."""

    detail = serializers.CharField()
    # The metaclass takes declared fields off the class, so this does not hide ``.errors``.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


def error_responses(*codes: int) -> dict[int, type[ErrorSerializer]]:
    return dict.fromkeys(codes, ErrorSerializer)
