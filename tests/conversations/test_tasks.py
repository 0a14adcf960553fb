from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from conversations.services import expired_refresh_tokens_delete
from conversations.tasks import clear_expired_sessions, flush_expired_tokens
from tests.conversations.factories import UserFactory


@pytest.mark.django_db
def test_the_daily_flush_deletes_expired_refresh_tokens_and_keeps_live_ones() -> None:
    # Every refresh rotates the token and stores the new one: nothing else removes them.
    user = UserFactory.create()
    # simplejwt's models declare no manager for the type checker.
    outstanding = OutstandingToken._default_manager
    blacklisted = BlacklistedToken._default_manager
    now = timezone.now()
    expired = outstanding.create(
        user=user, jti="expired", token="a.b.c", expires_at=now - timedelta(days=1)
    )
    blacklisted.create(token=expired)
    outstanding.create(user=user, jti="live", token="d.e.f", expires_at=now + timedelta(days=1))

    flush_expired_tokens.apply().get()

    assert list(outstanding.values_list("jti", flat=True)) == ["live"]
    assert not blacklisted.exists()


@pytest.mark.django_db
def test_expired_tokens_are_deleted_a_batch_a_transaction_until_none_is_left() -> None:
    user = UserFactory.create()
    outstanding = OutstandingToken._default_manager
    now = timezone.now()
    for number in range(5):
        expired = outstanding.create(
            user=user, jti=f"expired-{number}", token="a.b.c", expires_at=now - timedelta(days=1)
        )
        BlacklistedToken._default_manager.create(token=expired)
    outstanding.create(user=user, jti="live", token="d.e.f", expires_at=now + timedelta(days=1))

    deleted = expired_refresh_tokens_delete(batch_size=2)

    assert deleted == 5
    assert list(outstanding.values_list("jti", flat=True)) == ["live"]
    assert not BlacklistedToken._default_manager.exists()


@pytest.mark.django_db
def test_the_nightly_session_clearing_deletes_expired_admin_sessions_and_keeps_live_ones() -> None:
    now = timezone.now()
    Session.objects.create(session_key="expired", session_data="", expire_date=now - timedelta(1))
    Session.objects.create(session_key="live", session_data="", expire_date=now + timedelta(1))

    clear_expired_sessions.apply().get()

    assert list(Session.objects.values_list("session_key", flat=True)) == ["live"]
