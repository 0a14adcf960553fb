from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import TYPE_CHECKING

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from beemanhoney.common.authentication import PasswordBoundRefreshToken
from conversations.services import guest_customer_create
from tests.conversations.factories import StaffFactory, UserFactory

if TYPE_CHECKING:
    from rest_framework.response import _MonkeyPatchedResponse as Response

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new battery staple"
CHANGED = "The password has changed since this token was issued: log in again."


def _log_in(user: User, password: str = PASSWORD) -> dict[str, str]:
    body = {"username": user.username, "password": password}
    tokens: dict[str, str] = APIClient().post("/api/auth/token/", body).json()
    return tokens


def _get_with(access: str) -> "Response":
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client.get("/api/conversations/")


def _refresh(refresh: str) -> "Response":
    return APIClient().post("/api/auth/token/refresh/", {"refresh": refresh})


def _change_password(user: User) -> None:
    user.set_password(NEW_PASSWORD)
    user.save()


def test_a_password_change_refuses_the_tokens_issued_before_it() -> None:
    user = UserFactory.create()
    tokens = _log_in(user)

    _change_password(user)
    used = _get_with(tokens["access"])
    refreshed = _refresh(tokens["refresh"])

    assert used.status_code == 401
    assert used.json() == {"detail": CHANGED, "code": "password_changed"}
    assert refreshed.status_code == 401
    assert refreshed.json() == {
        "detail": CHANGED,
        "code": "password_changed",
        "errors": {"refresh": [CHANGED]},
        "error_codes": {"refresh": ["password_changed"]},
    }


def test_a_pair_from_a_refresh_before_the_password_change_is_refused_too() -> None:
    user = UserFactory.create()
    rotated = _refresh(_log_in(user)["refresh"]).json()

    _change_password(user)

    assert _get_with(rotated["access"]).status_code == 401
    assert _refresh(rotated["refresh"]).json()["detail"] == CHANGED


def test_tokens_issued_after_a_password_change_work() -> None:
    user = UserFactory.create()
    _log_in(user)
    _change_password(user)

    tokens = _log_in(user, NEW_PASSWORD)
    refreshed = _refresh(tokens["refresh"])

    assert _get_with(tokens["access"]).status_code == 200
    assert refreshed.status_code == 200
    assert _get_with(refreshed.json()["access"]).status_code == 200


def test_staff_changing_a_password_in_the_admin_revokes_the_user_s_tokens() -> None:
    user = UserFactory.create()
    tokens = _log_in(user)
    staff = Client()
    staff.force_login(StaffFactory.create())

    changed = staff.post(
        f"/admin/auth/user/{user.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )

    assert changed.status_code == 302
    assert _get_with(tokens["access"]).json() == {"detail": CHANGED, "code": "password_changed"}
    assert _refresh(tokens["refresh"]).status_code == 401


def test_the_refresh_token_on_record_is_the_one_issued_claim_and_all() -> None:
    user = UserFactory.create()
    tokens = _log_in(user)

    recorded = OutstandingToken._default_manager.get(user=user)

    assert recorded.token == tokens["refresh"]


def test_a_guest_s_tokens_work_on_through_refreshes() -> None:
    tokens = APIClient().post("/api/auth/guest/").json()

    refreshed = _refresh(tokens["refresh"]).json()
    again = _refresh(refreshed["refresh"])

    assert _get_with(tokens["access"]).status_code == 200
    assert _get_with(refreshed["access"]).status_code == 200
    assert again.status_code == 200


def test_a_token_without_the_password_claim_refreshes_only_for_a_guest() -> None:
    # As simplejwt made them before the claim existed.
    guest = RefreshToken.for_user(guest_customer_create())
    customer = RefreshToken.for_user(UserFactory.create())

    guest_refreshed = _refresh(str(guest))
    customer_refreshed = _refresh(str(customer))

    assert guest_refreshed.status_code == 200
    assert _get_with(guest_refreshed.json()["access"]).status_code == 200
    assert customer_refreshed.status_code == 401
    assert customer_refreshed.json()["detail"] == CHANGED


def test_an_access_token_without_the_password_claim_lives_out_its_minutes() -> None:
    access = AccessToken.for_user(UserFactory.create())

    assert _get_with(str(access)).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_of_two_refreshes_of_one_token_at_once_exactly_one_succeeds(monkeypatch) -> None:
    tokens = _log_in(UserFactory.create())
    both_checked = Barrier(2, timeout=10)
    check_blacklist = RefreshToken.check_blacklist

    def check_then_wait(token: RefreshToken) -> None:
        # Neither request goes on to blacklist the token until both found it not blacklisted.
        check_blacklist(token)
        both_checked.wait()

    monkeypatch.setattr(RefreshToken, "check_blacklist", check_then_wait)

    def refresh(_: int) -> "Response":
        try:
            return _refresh(tokens["refresh"])
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(refresh, range(2)))

    assert sorted(answer.status_code for answer in answers) == [200, 401]
    assert [answer.json() for answer in answers if answer.status_code == 401] == [
        {
            "detail": "Token is blacklisted",
            "code": "token_not_valid",
            "errors": {"refresh": ["Token is blacklisted"]},
            "error_codes": {"refresh": ["token_not_valid"]},
        }
    ]


@pytest.mark.parametrize("user_id", ["abc", ["1"], "1\x00"])
def test_a_signed_token_naming_no_user_id_is_refused_as_a_token(user_id: object) -> None:
    # Only a token signed with the server's key can carry such a claim.
    token = AccessToken.for_user(UserFactory.create())
    token["user_id"] = user_id

    response = _get_with(str(token))

    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


@pytest.mark.parametrize(("claim", "value"), [("jti", None), ("user_id", "abc")])
def test_a_signed_refresh_token_with_no_id_or_user_id_is_refused(claim: str, value: object) -> None:
    token = PasswordBoundRefreshToken.for_user(UserFactory.create())
    if value is None:
        del token.payload[claim]
    else:
        token[claim] = value

    responses = [
        _refresh(str(token)),
        APIClient().post("/api/auth/logout/", {"refresh": str(token)}),
    ]

    assert [response.status_code for response in responses] == [401, 401]
