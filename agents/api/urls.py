from django.urls import path

from agents.api import views

urlpatterns = [
    path("runs/<uuid:run_id>/", views.RunDetailApi.as_view(), name="run-detail"),
    path("runs/<uuid:run_id>/cancel/", views.RunCancelApi.as_view(), name="run-cancel"),
    path("runs/<uuid:run_id>/events/", views.RunEventsApi.as_view(), name="run-events"),
]
