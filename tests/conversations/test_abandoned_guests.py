"""Guests who never wrote and can no longer sign in are deleted daily; everyone else stays."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from conversations.services import abandoned_guests_delete, guest_customer_create
from conversations.tasks import delete_abandoned_guests
from tests.conversations.factories import ConversationFactory, UserFactory

pytestmark = pytest.mark.django_db


def _guest(*, joined_days_ago: float, token_expired_minutes_ago: float | None = None) -> User:
    guest = guest_customer_create()
    now = timezone.now()
    User.objects.filter(pk=guest.pk).update(date_joined=now - timedelta(days=joined_days_ago))
    if token_expired_minutes_ago is not None:
        OutstandingToken._default_manager.create(  # simplejwt declares no manager for mypy
            user=guest,
            jti=f"jti-{guest.pk}",
            token="a.b.c",
            expires_at=now - timedelta(minutes=token_expired_minutes_ago),
        )
    return guest


def test_only_guests_who_never_opened_a_conversation_and_cannot_sign_in_are_deleted() -> None:
    abandoned = _guest(joined_days_ago=30, token_expired_minutes_ago=3 * 24 * 60)
    abandoned_without_a_token = _guest(joined_days_ago=30)
    talked = _guest(joined_days_ago=30, token_expired_minutes_ago=3 * 24 * 60)
    ConversationFactory.create(owner=talked)
    refreshing = _guest(joined_days_ago=30, token_expired_minutes_ago=-24 * 60)  # valid a day
    # Its last refresh token lapsed 10 minutes ago: an access token from it may still be valid.
    just_lapsed = _guest(joined_days_ago=30, token_expired_minutes_ago=10)
    new = _guest(joined_days_ago=2)
    customer = UserFactory.create()
    User.objects.filter(pk=customer.pk).update(date_joined=timezone.now() - timedelta(days=90))

    deleted = abandoned_guests_delete(batch_size=1)

    assert deleted == 2
    remaining = set(User.objects.values_list("pk", flat=True))
    assert abandoned.pk not in remaining
    assert abandoned_without_a_token.pk not in remaining
    assert {talked.pk, refreshing.pk, just_lapsed.pk, new.pk, customer.pk} <= remaining


def test_the_daily_task_deletes_them() -> None:
    abandoned = _guest(joined_days_ago=30)

    delete_abandoned_guests.apply().get()

    assert not User.objects.filter(pk=abandoned.pk).exists()
