"""Admin form fields that read a number written as the API and the imports read it
(``beemanhoney.common.numbers``): Django's read "1e3" as 1000 and "5.0" as 5."""

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from beemanhoney.common.numbers import PLAIN_DECIMAL, PLAIN_WHOLE


class _PlainNumberFormField(forms.Field):
    written_as: re.Pattern[str]

    def to_python(self, value: Any) -> Any:
        written = value.strip() if isinstance(value, str) else ""
        if written and not self.written_as.fullmatch(written):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class PlainDecimalFormField(_PlainNumberFormField, forms.DecimalField):
    written_as = PLAIN_DECIMAL


class PlainIntegerFormField(_PlainNumberFormField, forms.IntegerField):
    written_as = PLAIN_WHOLE
