from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

from beemanhoney.common.admin import admin_login
from beemanhoney.common.views import SchemaApi
from conversations.api.views import TokenLogoutApi, TokenObtainApi, TokenRefreshApi
from conversations.views import ChatPageView

urlpatterns = [
    # Before the admin's own URLs: its login, rate limited per address.
    path("admin/login/", admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("chat/", ChatPageView.as_view(), name="chat"),
    path("api/schema/", SchemaApi.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/auth/token/", TokenObtainApi.as_view(), name="auth-token"),
    path("api/auth/token/refresh/", TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("api/auth/logout/", TokenLogoutApi.as_view(), name="auth-logout"),
    path("api/", include("catalog.api.urls")),
    path("api/", include("conversations.api.urls")),
    path("api/", include("agents.api.urls")),
]

handler400 = "beemanhoney.common.views.bad_request"
handler404 = "beemanhoney.common.views.not_found"
handler500 = "beemanhoney.common.views.server_error"
