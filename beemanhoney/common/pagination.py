from drf_spectacular.utils import inline_serializer
from rest_framework.pagination import PageNumberPagination
from rest_framework.serializers import IntegerField, Serializer, URLField


class StandardPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


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
