from django.urls import path

from catalog.api import views

urlpatterns = [
    path("products/", views.ProductListApi.as_view(), name="product-list"),
    path("products/<str:sku>/", views.ProductDetailApi.as_view(), name="product-detail"),
    path("categories/", views.CategoryListApi.as_view(), name="category-list"),
    path("categories/<slug:slug>/", views.CategoryDetailApi.as_view(), name="category-detail"),
    path("knowledge/", views.KnowledgeListApi.as_view(), name="knowledge-list"),
    path("knowledge/<slug:slug>/", views.KnowledgeDetailApi.as_view(), name="knowledge-detail"),
]
