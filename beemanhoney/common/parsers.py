"""The API's JSON parser: DRF's, with every malformed body a 400 and a size limit."""

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.utils import json


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


class JSONParser(parsers.JSONParser):
    """DRF's parser turns only ``ValueError`` into a 400: a body nested a thousand deep
    (``RecursionError``) or a ``charset`` that is not a text encoding (``rot13``, ``zlib``) was a
    500. It also read any size of body, where Django limits form bodies to
    ``DATA_UPLOAD_MAX_MEMORY_SIZE``; the same limit applies here."""

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(body) > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            # bytes.decode accepts text encodings only: LookupError for rot13 and the like.
            text = body.decode(encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - the body is not {encoding} text.") from exc
        try:
            return json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {str(exc)[:200]}") from exc
