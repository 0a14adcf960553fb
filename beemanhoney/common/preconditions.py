"""Conditional writes: a ``PATCH`` that sends back the ``ETag`` its ``GET`` carried, in
``If-Match``, changes the row only if nobody has changed it since (RFC 9110, 13.1.1); else 412,
and the client reads the row again instead of overwriting what someone else wrote."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from hashlib import md5
from typing import Any, TypeVar

from django.db import models, transaction
from django.http import Http404
from django.utils.http import parse_etags, quote_etag
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.request import Request

from beemanhoney.common.exceptions import ApplicationError
from beemanhoney.common.renderers import JSONRenderer

M = TypeVar("M", bound=models.Model)

IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="The ETag of the row's GET: the change is made only if nobody has changed the"
    " row since (else 412, and nothing is written).",
)


def representation_etag(data: Any) -> str:
    """The strong ETag of ``data`` as the API renders it: what ``ConditionalGetMiddleware``
    would make of the body, set by the view itself so that a write can be compared with it."""
    return quote_etag(md5(JSONRenderer().render(data), usedforsecurity=False).hexdigest())


class PreconditionFailed(ApplicationError):
    def __init__(self) -> None:
        super().__init__(
            "It has changed since the ETag in If-Match was read: read it again.",
            code="precondition_failed",
            status_code=status.HTTP_412_PRECONDITION_FAILED,
        )


def if_match_check(request: Request, row: M, shown: Callable[[M], Any]) -> None:
    """``PreconditionFailed`` unless the request's ``If-Match``, when it sends one, is "*" or
    names the ETag of ``shown(row)`` (the row as its ``GET`` shows it, made only then).
    Compared strongly, as RFC 9110 asks: a weak ETag never matches."""
    header = request.headers.get("If-Match")
    if header is None:
        return
    etags = parse_etags(header)
    if "*" not in etags and representation_etag(shown(row)) not in etags:
        raise PreconditionFailed


@contextmanager
def locked_if_match(
    request: Request, rows: models.QuerySet[M], shown: Callable[[M], Any]
) -> Iterator[M]:
    """The one row of ``rows``, locked until the block ends (so nothing changes it between the
    check and the write), once the request's ``If-Match`` passes against ``shown(row)``: 404
    when there is no row, 412 when it has changed."""
    with transaction.atomic():
        row = rows.select_for_update(of=("self",)).first()
        if row is None:
            raise Http404
        if_match_check(request, row, shown)
        yield row
