from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth import get_permission_codename
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Model
from django.http import HttpRequest
from rest_framework.exceptions import MethodNotAllowed, NotAuthenticated
from rest_framework.permissions import SAFE_METHODS, BasePermission, DjangoModelPermissions
from rest_framework.request import Request

if TYPE_CHECKING:
    # Not at import: DRF imports the default permission classes as it defines APIView.
    from rest_framework.views import APIView


def method_answered_check(request: Request, view: APIView) -> None:
    """``MethodNotAllowed`` (405) for a method ``view`` does not answer. DRF checks who may
    before it looks for the method, so an anonymous PUT of a product was a 401 and a
    customer's a 403, as if someone else might: no one may."""
    method = (request.method or "").lower()
    if method not in view.http_method_names or not hasattr(view, method):
        raise MethodNotAllowed(request.method or "")


class MethodAnswered(BasePermission):
    """``method_answered_check``, first among a view's permissions."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        method_answered_check(request, view)
        return True


class IsStaffWithModelPermissionOrReadOnly(DjangoModelPermissions):
    """Anyone may read. A write needs a staff user who holds the permission DRF's
    ``DjangoModelPermissions`` names for it (add for POST, change for PUT and PATCH, delete for
    DELETE) on the view's ``permission_model``, as the admin asks: staff who only answer
    customers cannot change prices. These views have no queryset for DRF's class to read the
    model from."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        method_answered_check(request, view)
        if request.method in SAFE_METHODS:
            return True
        user = request.user
        model: type[Model] | None = getattr(view, "permission_model", None)
        if not (user.is_authenticated and user.is_staff) or model is None:
            return False
        if request.method not in self.perms_map:
            return False
        return user.has_perms(self.get_required_permissions(request.method, model))


def model_permission(action: str, model: type[Model]) -> str:
    """The permission the admin checks to ``action`` ("view", "change"...) ``model``'s rows:
    "catalog.view_product"."""
    return f"{model._meta.app_label}.{get_permission_codename(action, model._meta)}"


def staff_may_view(user: User | AnonymousUser, model: type[Model]) -> bool:
    """Whether ``user`` is staff who may view or change ``model`` in the admin, and so may read
    its rows customers do not see (an inactive product, an unpublished article)."""
    if not (user.is_authenticated and user.is_staff):
        return False
    return any(user.has_perm(model_permission(action, model)) for action in ("view", "change"))


def authenticated_user(request: HttpRequest | Request) -> User:
    """The request's user, for a view only authenticated users reach (its permission classes
    saw to that); ``NotAuthenticated`` should one ever be anonymous."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated
    return user
