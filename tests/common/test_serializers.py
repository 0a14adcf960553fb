import pytest
from django.http import QueryDict
from rest_framework import serializers

from beemanhoney.common.serializers import StrictSerializer


class StockInput(StrictSerializer):
    read_only_names = ("sku",)

    stock = serializers.IntegerField(min_value=0)
    total = serializers.IntegerField(read_only=True)


class LabelInput(StrictSerializer):
    name = serializers.CharField(required=False)
    slug = serializers.SlugField(required=False)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    note = serializers.CharField(required=False, allow_null=True)


def test_known_writable_fields_are_accepted() -> None:
    payload = StockInput(data={"stock": 3})

    assert payload.is_valid()
    assert payload.validated_data == {"stock": 3}


def test_unknown_and_read_only_keys_are_refused_each_by_name() -> None:
    payload = StockInput(data={"stok": 3, "sku": "X", "total": 1}, partial=True)

    assert not payload.is_valid()
    assert payload.errors == {
        "stok": ["Unknown field."],
        "sku": ["This field cannot be changed."],
        "total": ["This field cannot be changed."],
    }


def test_a_read_only_key_on_a_full_write_cannot_be_set() -> None:
    payload = StockInput(data={"stock": 3, "sku": "X"})

    assert not payload.is_valid()
    assert payload.errors == {"sku": ["This field cannot be set."]}


def test_unknown_keys_are_reported_with_the_other_fields_errors() -> None:
    payload = StockInput(data={"stock": -1, "bogus": 1})

    assert not payload.is_valid()
    assert set(payload.errors) == {"stock", "bogus"}


def test_a_form_posts_csrf_token_is_not_a_field() -> None:
    payload = StockInput(data={"stock": 3, "csrfmiddlewaretoken": "abc"})

    assert payload.is_valid()


@pytest.mark.parametrize("value", [123, 1.5, True, ["x"], {"x": 1}])
def test_a_text_field_takes_only_a_string(value: object) -> None:
    payload = LabelInput(data={"name": value, "slug": value})

    assert not payload.is_valid()
    assert payload.errors == {"name": ["Not a valid string."], "slug": ["Not a valid string."]}


def test_a_list_of_text_takes_only_strings() -> None:
    payload = LabelInput(data={"tags": ["raw", 7]})

    assert not payload.is_valid()
    assert payload.errors == {"tags": ["Not a valid string."]}


def test_strings_a_form_sends_and_null_where_allowed_are_accepted() -> None:
    form = QueryDict(mutable=True)
    form.update({"name": "Raw", "slug": "raw"})
    form.setlist("tags", ["a", "b"])

    assert LabelInput(data=form).is_valid()
    payload = LabelInput(data={"name": "Raw", "tags": ["a"], "note": None})
    assert payload.is_valid()
    assert payload.validated_data == {"name": "Raw", "tags": ["a"], "note": None}
