"""Rate limits a real shop would choose, read from ``settings.THROTTLE_RATES`` on each use."""

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class _SettingsRateMixin:
    scope: str

    def get_rate(self) -> str | None:
        return settings.THROTTLE_RATES.get(self.scope)


class MessagePostThrottle(_SettingsRateMixin, UserRateThrottle):
    """Per customer: people type; scripts flood."""

    scope = "message_post"


class MessageDailyQuotaThrottle(_SettingsRateMixin, UserRateThrottle):
    """Per customer per day: bounds what one customer can spend on the model."""

    scope = "message_daily"


class GuestCreateThrottle(_SettingsRateMixin, AnonRateThrottle):
    """Per client IP: guest sessions are free to create, so cap how fast."""

    scope = "guest_create"


class ReadThrottle(_SettingsRateMixin, UserRateThrottle):
    """Everything else, per customer (or per IP when anonymous)."""

    scope = "read"
