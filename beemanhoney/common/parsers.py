"""The API's body parsers: DRF's, with a size limit, and every malformed JSON body a 400."""

import io
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


def read_limited(stream: IO[bytes]) -> bytes:
    """The whole body, or ``RequestTooLarge`` past ``DATA_UPLOAD_MAX_MEMORY_SIZE``.

    DRF's parsers read the stream themselves, past the check Django makes in ``request.body``.
    """
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(body) > limit:
        raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
    return body


class _LimitedBodyParser(parsers.BaseParser):
    """Parses the body only once ``read_limited`` has read it: put before a DRF parser."""

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        return super().parse(io.BytesIO(read_limited(stream)), media_type, parser_context)


class FormParser(_LimitedBodyParser, parsers.FormParser):
    pass


class MultiPartParser(_LimitedBodyParser, parsers.MultiPartParser):
    """Django limits a multipart body's fields to ``DATA_UPLOAD_MAX_MEMORY_SIZE``, not its files:
    any anonymous POST could stream a file of any size to a temporary file, though no API view
    takes one."""


class JSONParser(parsers.JSONParser):
    """DRF's parser turns only ``ValueError`` into a 400: a body nested a thousand deep
    (``RecursionError``) or a ``charset`` that is not a text encoding (``rot13``, ``zlib``) was a
    500. It also read any size of body."""

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        body = read_limited(stream)
        try:
            # bytes.decode accepts text encodings only: LookupError for rot13 and the like.
            text = body.decode(encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - the body is not {encoding} text.") from exc
        try:
            return json.loads(
                text,
                parse_constant=json.strict_constant if self.strict else None,
                object_pairs_hook=object_without_repeated_keys,
            )
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {str(exc)[:200]}") from exc


class RepeatedKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key!r} is given more than once")
        self.key = key


def object_without_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook`` refusing an object that names a key twice: the last
    value was taken silently (``{"price": "9.99", "price": "0.01"}``), where a proxy or client
    that reads the first would see another request, and a CSV refuses a repeated column."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise RepeatedKeyError(key)
        found[key] = value
    return found
