import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.db.models import Model
from django.test import Client
from django.urls import reverse


def _every_registered_model() -> list[type[Model]]:
    return sorted(admin.site._registry, key=lambda model: model._meta.label)


@pytest.mark.django_db
@pytest.mark.parametrize("model", _every_registered_model(), ids=lambda model: model._meta.label)
def test_every_change_list_refuses_a_filter_postgresql_cannot_run_with_400(
    client: Client, model: type[Model]
) -> None:
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-unused-1"))
    changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")

    response = client.get(changelist, {"id__regex": "("})

    assert response.status_code == 400
