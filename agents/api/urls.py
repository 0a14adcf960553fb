from django.urls import path

import beemanhoney.common.path_converters  # noqa: F401  (registers any_case_uuid)
from agents.api import views

urlpatterns = [
    path("runs/<any_case_uuid:run_id>/", views.RunDetailApi.as_view(), name="run-detail"),
    path("runs/<any_case_uuid:run_id>/cancel/", views.RunCancelApi.as_view(), name="run-cancel"),
    path("runs/<any_case_uuid:run_id>/events/", views.RunEventsApi.as_view(), name="run-events"),
]
