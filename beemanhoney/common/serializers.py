from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

UNKNOWN_FIELD = "Unknown field."
# Django's CSRF token travels in the body of a form that a page with a session posts.
_TRANSPORT_KEYS = frozenset({"csrfmiddlewaretoken"})


class StrictSerializer(serializers.Serializer):
    """An input serializer that answers a key naming no writable field with a 400 naming it,
    where DRF drops it unread: a misspelt field ("stok") or one the write cannot set ("sku" on
    a change) is not answered as if it had been written.

    ``read_only_names``: what the resource shows but this write cannot set (its key, say).
    Those, and read-only fields, are "This field cannot be changed." on a partial update and
    "This field cannot be set." otherwise; any other key is "Unknown field."."""

    read_only_names: tuple[str, ...] = ()

    def to_internal_value(self, data: Any) -> Any:
        unknown = self._unknown_keys(data)
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if unknown and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **unknown}) from exc
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value

    def _unknown_keys(self, data: Any) -> dict[str, list[str]]:
        if not isinstance(data, Mapping):
            return {}  # DRF's own "Invalid data" answer follows
        writable = {name for name, field in self.fields.items() if not field.read_only}
        read_only = f"This field cannot be {'changed' if self.partial else 'set'}."
        return {
            str(key): [
                read_only if key in self.read_only_names or key in self.fields else UNKNOWN_FIELD
            ]
            for key in data
            if key not in writable and key not in _TRANSPORT_KEYS
        }
