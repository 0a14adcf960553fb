import pytest
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.models import Group, Permission, User
from django.db.models import Model
from django.test import Client
from django.urls import reverse
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken

from tests.conversations.factories import StaffFactory, UserFactory


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


@pytest.mark.django_db
@pytest.mark.parametrize("model", _every_registered_model(), ids=lambda model: model._meta.label)
def test_no_change_list_counts_every_row_for_its_filters_when_asked_to_show_counts(
    client: Client, model: type[Model]
) -> None:
    client.force_login(StaffFactory.create())
    changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")

    response = client.get(changelist, {"_facets": "True"})

    assert response.status_code == 200
    assert response.context["cl"].add_facets is False


def _columns_left_unsortable(changelist: ChangeList) -> list[int]:
    """The columns Django could sort the list by that its admin's ``sortable_by`` leaves out."""
    return [
        index
        for index, column in enumerate(changelist.list_display)
        if changelist.sortable_by is not None
        and column not in changelist.sortable_by
        and ChangeList.get_ordering_field(changelist, column)
    ]


@pytest.mark.django_db
def test_no_change_list_sorts_by_a_column_its_sortable_by_leaves_out_named_by_hand(
    client: Client,
) -> None:
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-unused-1"))
    checked = []
    for model in _every_registered_model():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        # A column Django cannot sort by is passed over: the order it leaves.
        unsorted = client.get(url, {"o": "x"}).context["cl"].queryset.query.order_by
        for index in _columns_left_unsortable(client.get(url).context["cl"]):
            listing = client.get(url, {"o": str(index)})

            assert listing.status_code == 200
            assert listing.context["cl"].queryset.query.order_by == unsorted, (url, index)
            checked.append((model, index))
    # The runs' list leaves its cost and token columns out, the products' its category.
    assert len(checked) >= 5


@pytest.mark.django_db
def test_only_superusers_make_or_change_groups(client: Client) -> None:
    editors = Group.objects.create(name="Catalogue editors")
    staff = User.objects.create_user("sam", password="pw-unused-2", is_staff=True)
    staff.groups.add(editors)
    staff.user_permissions.set(Permission.objects.filter(codename__endswith="_group"))
    client.force_login(staff)
    every_permission = list(Permission.objects.values_list("pk", flat=True))

    change = client.post(
        f"/admin/auth/group/{editors.pk}/change/",
        {"name": editors.name, "permissions": every_permission},
    )
    add = client.post("/admin/auth/group/add/", {"name": "Everything"})
    shown = client.get(f"/admin/auth/group/{editors.pk}/change/")

    assert (change.status_code, add.status_code, shown.status_code) == (403, 403, 200)
    assert not editors.permissions.exists()
    assert not Group.objects.filter(name="Everything").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["add/", "{pk}/change/"], ids=["add", "change"])
def test_a_blacklisted_token_s_page_takes_the_token_by_its_id_not_from_a_list_of_every_token(
    client: Client, django_assert_max_num_queries, page: str
) -> None:
    tokens = [RefreshToken.for_user(customer) for customer in UserFactory.create_batch(30)]
    tokens[0].blacklist()
    blacklisted = BlacklistedToken._default_manager.get()  # simplejwt declares no manager
    client.force_login(StaffFactory.create())

    with django_assert_max_num_queries(10):
        response = client.get(
            f"/admin/token_blacklist/blacklistedtoken/{page.format(pk=blacklisted.pk)}"
        )

    content = response.content.decode()
    assert response.status_code == 200
    assert 'class="vForeignKeyRawIdAdminField"' in content
    assert '<select name="token"' not in content
