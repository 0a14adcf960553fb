from django.urls import path, register_converter
from django.urls.converters import StringConverter

from catalog.api import views


class SkuConverter(StringConverter):
    """Any path segment PostgreSQL can compare: a NUL would fail the query, not match nothing.
    (Not ``sku_validator``'s pattern: skus saved before it must stay reachable.)"""

    regex = "[^/\x00]+"


register_converter(SkuConverter, "sku")

urlpatterns = [
    path("products/", views.ProductListApi.as_view(), name="product-list"),
    path("products/<sku:sku>/", views.ProductDetailApi.as_view(), name="product-detail"),
    path("categories/", views.CategoryListApi.as_view(), name="category-list"),
    path("categories/<slug:slug>/", views.CategoryDetailApi.as_view(), name="category-detail"),
    path("knowledge/", views.KnowledgeListApi.as_view(), name="knowledge-list"),
    path("knowledge/<slug:slug>/", views.KnowledgeDetailApi.as_view(), name="knowledge-detail"),
]
