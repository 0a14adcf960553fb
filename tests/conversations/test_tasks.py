from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from conversations.tasks import flush_expired_tokens
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
