from django.contrib.auth.models import User
from django.http import HttpRequest
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView


class IsStaffOrReadOnly(BasePermission):
    """Anyone may read; only staff may write."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


def authenticated_user(request: HttpRequest | Request) -> User:
    """The request's user, for a view only authenticated users reach (its permission classes
    saw to that); ``NotAuthenticated`` should one ever be anonymous."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated
    return user
