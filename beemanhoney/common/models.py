from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def max_length_of(model: type[models.Model], field_name: str) -> int:
    """The most characters ``model``'s text field ``field_name`` holds."""
    field = model._meta.get_field(field_name)
    if not isinstance(field, models.Field) or field.max_length is None:
        raise TypeError(f"{model.__name__}.{field_name} has no max_length")
    return field.max_length
