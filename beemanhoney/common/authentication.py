from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Field
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, Token
from rest_framework_simplejwt.utils import datetime_from_epoch

FINGERPRINT_CLAIM = "pwd"
# A prefix of Django's session auth hash: an HMAC keyed with SECRET_KEY, so the claim, readable
# in the token, tells nothing about the password hash without the key.
FINGERPRINT_LENGTH = 16


def password_fingerprint(user: AbstractBaseUser) -> str:
    """What a token carries of its user's password: it changes whenever the password does."""
    return user.get_session_auth_hash()[:FINGERPRINT_LENGTH]


def token_password_check(*, token: Token, user: AbstractBaseUser) -> None:
    """Refuse ``token`` (401) when ``user``'s password changed after it was issued."""
    fingerprint = token.get(FINGERPRINT_CLAIM)
    if fingerprint is None:
        # Issued before the claim existed. A refresh token would rotate on without it forever, so
        # it is refused unless a guest's (no password to log in again with, none to change); an
        # access token lives out its JWT_ACCESS_MINUTES.
        current = isinstance(token, AccessToken) or not user.has_usable_password()
    else:
        current = constant_time_compare(fingerprint, password_fingerprint(user))
    if not current:
        raise AuthenticationFailed(
            _("The password has changed since this token was issued: log in again."),
            code="password_changed",
        )


def token_user_id_check(token: Token) -> None:
    """``TokenError`` when ``token`` names its user by something no user id can be ("abc", a
    list): only a token signed with our key can, but it is refused as a token, where looking
    its user up failed (a 500). A token naming no user is left to the lookup to refuse."""
    user_id = token.get(api_settings.USER_ID_CLAIM)
    user_id_field = get_user_model()._meta.get_field(api_settings.USER_ID_FIELD)
    assert isinstance(user_id_field, Field)  # a column of the user table, not a relation
    try:
        user_id_field.to_python(user_id)
    except ValidationError as error:
        raise TokenError(_("Token contained no recognizable user identification")) from error


T = TypeVar("T", bound=Token)


class _PasswordClaim(Token):
    @classmethod
    def for_user(cls: type[T], user: AbstractBaseUser) -> T:  # type: ignore[override]
        token = super().for_user(user)
        token[FINGERPRINT_CLAIM] = password_fingerprint(user)
        return token


# simplejwt's blacklist mixin records the token from its ``for_user`` after this class's has run
# (it comes later in the method order), so the token on record carries the claim. The type
# checker finds the mixin's ``for_user`` incompatible with Token's, as in simplejwt's own class.
class PasswordBoundRefreshToken(RefreshToken, _PasswordClaim):  # type: ignore[misc]
    """simplejwt's refresh token, carrying its user's password fingerprint, as do the access
    tokens made from it and the refresh tokens it rotates into (they copy its claims)."""

    def verify(self) -> None:
        # simplejwt's blacklist check reads the id unchecked (a KeyError, a 500): only a token
        # signed with our key can lack one, but it is refused as a token. So is one naming its
        # user by no user id, before a refresh or a logout looks the user up.
        if api_settings.JTI_CLAIM not in self.payload:
            raise TokenError(_("Token has no id"))
        token_user_id_check(self)
        super().verify()


@transaction.atomic
def refresh_token_rotate(*, token: RefreshToken, user: AbstractBaseUser) -> None:
    """Blacklist ``token`` and turn it into its successor: a new id and lifetime, the same claims.
    Two refreshes of one token can both pass simplejwt's blacklist check; only one of them
    creates the blacklist row (a unique key), and the other is refused as a reused token is."""
    outstanding, _created = OutstandingToken._default_manager.get_or_create(
        jti=token[api_settings.JTI_CLAIM],
        defaults={
            "user": user,
            "created_at": token.current_time,
            "token": str(token),
            "expires_at": datetime_from_epoch(token["exp"]),
        },
    )
    if not BlacklistedToken._default_manager.get_or_create(token=outstanding)[1]:
        raise TokenError(_("Token is blacklisted"))
    token.set_jti()
    token.set_exp()
    token.set_iat()
    token.outstand()


class PasswordBoundJWTAuthentication(JWTAuthentication):
    """simplejwt's, refusing a token issued before its user's password last changed."""

    def get_user(self, validated_token: Token) -> Any:
        try:
            token_user_id_check(validated_token)
        except TokenError as error:
            raise InvalidToken(error.args[0]) from error
        user = super().get_user(validated_token)
        token_password_check(token=validated_token, user=user)
        return user


class PasswordBoundJWTScheme(SimpleJWTScheme):
    """The OpenAPI security scheme drf-spectacular gives simplejwt's class, for this one."""

    target_class = "beemanhoney.common.authentication.PasswordBoundJWTAuthentication"
