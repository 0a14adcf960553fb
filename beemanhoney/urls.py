from django.contrib import admin
from django.urls import include, path

from beemanhoney.common.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/", include("catalog.api.urls")),
]
