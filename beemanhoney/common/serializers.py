import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from django.http import QueryDict
from rest_framework import serializers

from beemanhoney.common.numbers import PLAIN_DECIMAL, PLAIN_WHOLE

UNKNOWN_FIELD = serializers.ErrorDetail("Unknown field.", code="unknown_field")
GIVEN_MORE_THAN_ONCE = serializers.ErrorDetail("Give this parameter once.", code="given_twice")
FIELD_GIVEN_MORE_THAN_ONCE = serializers.ErrorDetail("Give this field once.", code="given_twice")
# DRF's CharField's own word and code for it (a SlugField's "invalid" is about the slug's
# letters).
NOT_TEXT = serializers.ErrorDetail(
    str(serializers.CharField.default_error_messages["invalid"]), code="invalid"
)
# Django's CSRF token travels in the body of a form that a page with a session posts.
_TRANSPORT_KEYS = frozenset({"csrfmiddlewaretoken"})


class OneValuePerField(serializers.Serializer):
    """A one-valued field that a query string or form (a ``QueryDict``) gives more than once is
    refused with a 400 naming it, where Django would answer its last value alone: a JSON key
    given twice is refused by the parser (``parsers``). List fields read every value given (DRF's
    ``ListField`` does)."""

    given_twice = FIELD_GIVEN_MORE_THAN_ONCE

    def to_internal_value(self, data: Any) -> Any:
        with _refusing(self._given_more_than_once(data)):
            return super().to_internal_value(data)

    def _given_more_than_once(self, data: Any) -> dict[str, list[serializers.ErrorDetail]]:
        if not isinstance(data, QueryDict):
            return {}
        return {
            name: [self.given_twice]
            for name, field in self.fields.items()
            if not isinstance(field, serializers.ListField) and len(data.getlist(name)) > 1
        }


class StrictSerializer(OneValuePerField):
    """An input serializer that answers a key naming no writable field with a 400 naming it,
    where DRF drops it unread: a misspelt field ("stok") or one the write cannot set ("sku" on
    a change) is not answered as if it had been written. Its text fields take strings only.

    ``read_only_names``: what the resource shows but this write cannot set (its key, say).
    Those, and read-only fields, are "This field cannot be changed." on a partial update and
    "This field cannot be set." otherwise; any other key is "Unknown field."."""

    read_only_names: tuple[str, ...] = ()

    def to_internal_value(self, data: Any) -> Any:
        # Not a mapping: DRF's own "Invalid data" answer follows.
        refused = (
            {**self._unknown_keys(data), **self._not_text(data)}
            if isinstance(data, Mapping)
            else {}
        )
        with _refusing(refused):
            return super().to_internal_value(data)

    def _not_text(self, data: Mapping[str, Any]) -> dict[str, list[serializers.ErrorDetail]]:
        """Text fields given something other than a string: DRF's ``CharField`` stores ``123``
        as "123", which here is a client's mistake (a number in the name, an id in a tag)."""
        errors = {}
        for name, field in self.fields.items():
            value = data.get(name)
            if field.read_only or value is None:
                continue  # None: the field's own "may not be null"
            if isinstance(field, serializers.ListField) and isinstance(value, list):
                field, values = field.child, value
            else:
                values = [value]
            if isinstance(field, serializers.CharField) and not all(
                isinstance(item, str) for item in values
            ):
                errors[name] = [NOT_TEXT]
        return errors

    def _unknown_keys(self, data: Mapping[str, Any]) -> dict[str, list[serializers.ErrorDetail]]:
        writable = {name for name, field in self.fields.items() if not field.read_only}
        read_only = serializers.ErrorDetail(
            f"This field cannot be {'changed' if self.partial else 'set'}.", code="read_only"
        )
        return {
            str(key): [
                read_only if key in self.read_only_names or key in self.fields else UNKNOWN_FIELD
            ]
            for key in data
            if key not in writable and key not in _TRANSPORT_KEYS
        }


class QueryParamsSerializer(OneValuePerField):
    """Query-string parameters: ``?category=a&category=b`` is a 400 naming ``category``, not a
    search of ``b`` alone."""

    given_twice = GIVEN_MORE_THAN_ONCE


@contextmanager
def _refusing(refused: dict[str, list[serializers.ErrorDetail]]) -> Iterator[None]:
    """A 400 with the errors ``refused`` names (if any), and the validation's own beside them."""
    try:
        yield
    except serializers.ValidationError as exc:
        if refused and isinstance(exc.detail, dict):
            raise serializers.ValidationError({**exc.detail, **refused}) from exc
        raise
    if refused:
        raise serializers.ValidationError(refused)


class _PlainNumberField(serializers.Field):
    """A number field that takes text only as ``written_as`` matches it (JSON numbers as DRF
    does): DRF alone reads "1e3" and "1_000" as 1000 and "٣" as 3."""

    written_as: re.Pattern[str]

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and not self.written_as.fullmatch(data.strip()):
            self.fail("invalid")
        return super().to_internal_value(data)


class PlainDecimalField(_PlainNumberField, serializers.DecimalField):
    """Zeros past ``decimal_places`` lose nothing: "12.500" is 12.50, as the catalogue import
    reads it, where DRF refused it (and counted them against ``max_digits``); "12.505" is still
    refused. Zero has no sign: "-0" was stored and answered as -0.00."""

    written_as = PLAIN_DECIMAL

    def to_internal_value(self, data: Any) -> Decimal:
        value: Decimal = super().to_internal_value(data)
        return value.copy_abs() if value.is_zero() else value

    def validate_precision(self, value: Decimal) -> Decimal:
        return super().validate_precision(_without_zeros_past(value, self.decimal_places))


def _without_zeros_past(value: Decimal, places: int | None) -> Decimal:
    """``value`` with the zeros it has past ``places`` decimal places dropped; unchanged if a
    digit there is not zero. Exact, by its digits: ``quantize`` would need a context precise
    enough for the longest number a client may send."""
    sign, digits, exponent = value.as_tuple()
    if places is None or not isinstance(exponent, int) or exponent >= -places:
        return value
    kept = max(len(digits) - (-places - exponent), 0)
    if any(digits[kept:]):
        return value
    return Decimal((sign, digits[:kept] or (0,), -places))


class PlainFloatField(_PlainNumberField, serializers.FloatField):
    """Not "nan" or "inf" either, which float() reads, nor a number too large for a float,
    which float() reads as infinity (a JSON integer as large raises)."""

    written_as = PLAIN_DECIMAL

    def to_internal_value(self, data: Any) -> float:
        try:
            value: float = super().to_internal_value(data)
        except OverflowError:
            self.fail("invalid")
        if not math.isfinite(value):
            self.fail("invalid")
        return value


class PlainIntegerField(_PlainNumberField, serializers.IntegerField):
    """Not "5.0" either, which DRF reads as 5."""

    written_as = PLAIN_WHOLE
