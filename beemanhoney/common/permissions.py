from django.contrib.auth.models import User
from django.db.models import Model
from django.http import HttpRequest
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

# The model permission a write needs, by HTTP method (Django's add / change / delete).
_WRITE_ACTIONS = {"POST": "add", "PUT": "change", "PATCH": "change", "DELETE": "delete"}


class IsStaffWithModelPermissionOrReadOnly(BasePermission):
    """Anyone may read. A write needs a staff user who holds the permission for it on the
    view's ``permission_model``, as the admin asks: staff who only answer customers cannot
    change prices."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in SAFE_METHODS:
            return True
        user = request.user
        if not (user.is_authenticated and user.is_staff):
            return False
        model: type[Model] | None = getattr(view, "permission_model", None)
        action = _WRITE_ACTIONS.get(request.method or "")
        if model is None or action is None:
            return False
        return user.has_perm(f"{model._meta.app_label}.{action}_{model._meta.model_name}")


def authenticated_user(request: HttpRequest | Request) -> User:
    """The request's user, for a view only authenticated users reach (its permission classes
    saw to that); ``NotAuthenticated`` should one ever be anonymous."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated
    return user
