from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework.pagination import PageNumberPagination
from rest_framework.serializers import IntegerField, Serializer, URLField


class StandardPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


# The list views are APIViews that page by hand, so the schema is told of the parameters.
# A page past the last (or not a number) answers 404 "Invalid page.", as DRF's paginator does.
PAGE_PARAMETERS = [
    OpenApiParameter("page", int, description="The page, from 1."),
    OpenApiParameter(
        "page_size",
        int,
        description=f"Rows per page: {StandardPagination.page_size} by default, at most "
        f"{StandardPagination.max_page_size}.",
    ),
]


def page_of(serializer_class: type[Serializer], name: str) -> Serializer:
    """The OpenAPI shape of a page of ``serializer_class`` items."""
    return inline_serializer(
        name=f"{name}Page",
        fields={
            "count": IntegerField(),
            "next": URLField(allow_null=True),
            "previous": URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )
