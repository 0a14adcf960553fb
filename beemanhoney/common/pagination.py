from django.core.paginator import Paginator
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

from beemanhoney.common.numbers import PLAIN_WHOLE
from beemanhoney.common.serializers import PlainIntegerField, QueryParamsSerializer


class PageParams(QueryParamsSerializer):
    """The paging parameters, each given at most once. ``page`` is read by DRF's paginator (a
    number from 1, or "last"); ``page_size`` here, where DRF reads "0", "-5" or "ten" as the
    default size without a word."""

    page = serializers.CharField(required=False)
    page_size = PlainIntegerField(required=False, min_value=1, allow_null=True)  # "": default


class StandardPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_number(self, request: Request, paginator: Paginator) -> str:
        """The page asked for; one not written as a plain number (a full-width digit, " 1 ",
        "1_0"), which Django's int() would read, is no page (404), as "ten" is."""
        number = str(super().get_page_number(request, paginator))
        if number in self.last_page_strings or PLAIN_WHOLE.fullmatch(number):
            return number
        return "not a page"

    def get_page_size(self, request: Request) -> int:
        """``page_size`` as asked, at most ``max_page_size``; a 400 naming the parameter where
        it is no whole number from 1 or is given twice."""
        params = PageParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        return min(params.validated_data.get("page_size") or self.page_size, self.max_page_size)


# The list views are APIViews that page by hand, so the schema is told of the parameters.
# A page past the last (or not a number) answers 404 "Invalid page.", as DRF's paginator does.
PAGE_PARAMETERS = [
    OpenApiParameter(
        "page",
        {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": ["last"]}]},
        description='The page, from 1, or "last".',
    ),
    OpenApiParameter(
        "page_size",
        {"type": "integer", "minimum": 1},
        description=f"Rows per page, from 1: {StandardPagination.page_size} by default; more "
        f"than {StandardPagination.max_page_size} gives {StandardPagination.max_page_size}.",
    ),
]


def page_of(serializer_class: type[serializers.Serializer], name: str) -> serializers.Serializer:
    """The OpenAPI shape of a page of ``serializer_class`` items."""
    return inline_serializer(
        name=f"{name}Page",
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )
