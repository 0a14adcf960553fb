"""What every ModelAdmin of the shop shares, and the admin's sign-in."""

import math
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.models import Group
from django.core.exceptions import BadRequest, ValidationError
from django.db import IntegrityError, models
from django.db.models import BooleanField, Field, QuerySet, Value
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.cache import never_cache
from django_celery_results import admin as task_results_admin
from django_celery_results.models import GroupResult, TaskResult
from rest_framework_simplejwt.token_blacklist import admin as token_admin
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from beemanhoney.common.exceptions import DeletedMeanwhile
from beemanhoney.common.forms import PlainDecimalFormField, PlainIntegerFormField
from beemanhoney.common.throttling import account_counts_release, login_rates_check

# Lookups a change list's URL may not filter by. A regular expression PostgreSQL cannot compile
# is a DataError (a 500), and any pattern is a way to make it work hard; the others need
# extensions the database does not have (a ProgrammingError).
REFUSED_URL_LOOKUPS = frozenset(
    {
        "regex",
        "iregex",
        "unaccent",
        "trigram_similar",
        "trigram_word_similar",
        "trigram_strict_word_similar",
    }
)


def url_lookup_allowed(lookup: str, value: str) -> bool:
    """Whether a change list may filter by ``lookup`` (``sku__iexact``) = ``value`` taken from
    its URL: not by a refused lookup, nor by a value holding NUL, which PostgreSQL text cannot
    hold (a DataError, whatever the field)."""
    if "\x00" in lookup or "\x00" in value:
        return False
    return REFUSED_URL_LOOKUPS.isdisjoint(lookup.split(LOOKUP_SEP))


# How many rows a delete page lists at each level: its summary counts them all.
DELETE_PAGE_ROWS_LISTED = 20


def more_rows_line(count: int) -> str:
    return f"… and {count:,} more"


def listed_at_most(rows: list[Any], limit: int = DELETE_PAGE_ROWS_LISTED) -> list[Any]:
    """A delete page's nested list (each row followed by the list of what deleting it takes
    with it), cut to ``limit`` rows at each level and a line counting the others: a customer's
    thousands of messages listed one by one made a page of megabytes."""
    listed: list[Any] = []
    rows_seen = 0
    for row in rows:
        if isinstance(row, list):
            if rows_seen <= limit:  # what the row listed just before takes with it
                listed.append(listed_at_most(row, limit))
            continue
        rows_seen += 1
        if rows_seen <= limit:
            listed.append(row)
    if rows_seen > limit:
        listed.append(more_rows_line(rows_seen - limit))
    return listed


def admin_link(model: type[models.Model], pk: Any, *, allowed: bool) -> str:
    """A link to the admin page of ``model``'s row ``pk``, shown by its id; the id alone where
    the staff may not open it (``allowed``: a link answering 403 helps no one)."""
    if not allowed:
        return str(pk)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[pk])
    return format_html('<a href="{}">{}</a>', url, pk)


def viewable_annotated(
    model_admin: admin.ModelAdmin, request: HttpRequest, rows: QuerySet[Any], **models_by_name: Any
) -> QuerySet[Any]:
    """``rows``, each with a flag per model in ``models_by_name`` saying whether the staff of
    ``request`` may view its rows: a list's columns and a page's read-only fields are not given
    the request, and the admin serves every request with one ``ModelAdmin``."""
    flags = {
        name: Value(
            model_admin.admin_site.get_model_admin(model).has_view_permission(request),
            output_field=BooleanField(),
        )
        for name, model in models_by_name.items()
    }
    return rows.annotate(**flags)


class ShopChangeList(ChangeList):
    """A change list that sorts by no column its admin's ``sortable_by`` leaves out. Django
    only hides those columns' header links: a hand-written ``?o=`` sorted by them all the same
    (the runs' cost column, a sort of every run). Such a column is passed over, as Django
    passes over one ``?o=`` names that it cannot sort by."""

    def get_ordering_field(self, field_name: Any) -> Any:
        if self.sortable_by is not None and field_name not in self.sortable_by:
            return None
        return super().get_ordering_field(field_name)


class ShopModelAdmin(admin.ModelAdmin):
    """The base of the shop's ModelAdmins: a hand-made change list URL whose filter PostgreSQL
    cannot run (``?sku__regex=(``, ``?status__exact=%00``) is refused as a 400, which Django
    makes of a refused lookup, rather than failing as a 500; so is an action on a selected id
    that is not one (``_selected_action=abc``). A change page saved as a colleague deletes its
    row says so, with nothing saved, rather than failing; one saved with a sku (a slug, a
    username) a colleague took a moment before shows the field's error. Its forms read numbers
    as the API does. Its delete pages list a few rows of each kind, and count them all. Its
    lists sort only by the columns ``sortable_by`` names, a hand-written ``?o=`` too."""

    # No "Show counts" beside the list's filters: they count every row of the table for each
    # filter, and a filter of our own is counted by a subquery PostgreSQL may run again for
    # every row. The runs list's counts never finished at 500k runs; the products' took 2 s.
    show_facets = admin.ShowFacets.NEVER

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ShopChangeList

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if not url_lookup_allowed(lookup, value):
            return False
        return super().lookup_allowed(lookup, value, request)

    def formfield_for_dbfield(
        self, db_field: Field, request: HttpRequest, **kwargs: Any
    ) -> forms.Field | None:
        """Numbers read as the API and the imports read them: "1e3" is no price."""
        if not db_field.choices:
            if isinstance(db_field, models.DecimalField):
                kwargs.setdefault("form_class", PlainDecimalFormField)
            elif isinstance(db_field, models.IntegerField):
                kwargs.setdefault("form_class", PlainIntegerFormField)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def response_action(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        for selected in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            try:
                self.opts.pk.to_python(selected)
            except ValidationError:
                message = f"{selected!r} is not the id of a {self.opts.verbose_name}."
                raise BadRequest(message) from None
        return super().response_action(request, queryset)

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        return listed_at_most(to_delete), model_count, perms_needed, listed_at_most(protected)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            try:
                return super().changeform_view(request, object_id, form_url, extra_context)
            except (IntegrityError, ValidationError):
                if request.method != "POST":
                    raise
                # A unique value (a sku, a slug, a username) that another request saved after
                # this form was checked and before its row was written: the whole save was
                # rolled back, and the form, checked again, names the field taken.
                return super().changeform_view(request, object_id, form_url, extra_context)
        except DeletedMeanwhile:  # raised by a service as the page saved (and rolled back)
            self.message_user(
                request,
                f"This {self.opts.verbose_name} was deleted while you were editing it: nothing"
                " was saved.",
                messages.ERROR,
            )
            changelist = f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"
            return HttpResponseRedirect(reverse(changelist))


class OutstandingTokenAdmin(ShopModelAdmin, token_admin.OutstandingTokenAdmin):
    """simplejwt's, without the token itself: a refresh token shown to staff who may view the
    list would let them sign in as its user, a superuser included. Nor may the list's URL
    filter by it: whether a row is listed for ``?token__gte=...`` tells the token a character
    at a time (as Django's user admin refuses ``password`` lookups)."""

    exclude = ("token",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [name for name in super().get_readonly_fields(request, obj) if name != "token"]

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if lookup.split(LOOKUP_SEP)[0] == "token":
            return False
        return super().lookup_allowed(lookup, value, request)


class BlacklistedTokenAdmin(ShopModelAdmin, token_admin.BlacklistedTokenAdmin):
    """simplejwt's, its token given by id: its pages offered a ``<select>`` of every token on
    record, each naming its user by a query of its own (100,000 tokens: 197 s and 9 MB a
    page)."""

    raw_id_fields = ["token"]


class GroupAdmin(ShopModelAdmin, auth_admin.GroupAdmin):
    """Django's, whose groups only superusers make, change or delete: staff who may change a
    group could give their own group any permission."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


class TaskResultAdmin(ShopModelAdmin, task_results_admin.TaskResultAdmin):
    pass


class GroupResultAdmin(ShopModelAdmin, task_results_admin.GroupResultAdmin):
    pass


# The other apps' admins, on the shop's base: Django's, simplejwt's and django-celery-results'
# (the users' is conversations.admin.UserAdmin: deleting an account deletes its conversations).
_SHOP_ADMINS: dict[type[Any], type[admin.ModelAdmin]] = {
    OutstandingToken: OutstandingTokenAdmin,
    BlacklistedToken: BlacklistedTokenAdmin,
    Group: GroupAdmin,
    TaskResult: TaskResultAdmin,
    GroupResult: GroupResultAdmin,
}
admin.site.unregister(list(_SHOP_ADMINS))
for model, model_admin in _SHOP_ADMINS.items():
    admin.site.register(model, model_admin)


@never_cache
def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's login, its password guesses limited by the API's login rates, in the same
    counts (``THROTTLE_LOGIN`` per client address, ``THROTTLE_LOGIN_ACCOUNT`` per username
    tried: one budget for both). The form is free."""
    if request.method != "POST":
        return admin.site.login(request)
    throttles, refused_for = login_rates_check(request)
    if refused_for is not None:
        wait = math.ceil(refused_for)
        response = HttpResponse(
            f"Too many login attempts. Try again in {wait} seconds.\n",
            status=429,
            content_type="text/plain; charset=utf-8",
        )
        response["Retry-After"] = str(wait)
        return response
    response = admin.site.login(request)
    if response.status_code == 302:  # signed in: sent on to the admin
        account_counts_release(throttles)
    return response
