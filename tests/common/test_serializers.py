from decimal import Decimal

import pytest
from django.http import QueryDict
from rest_framework import serializers

from beemanhoney.common.serializers import (
    FIELD_GIVEN_MORE_THAN_ONCE,
    GIVEN_MORE_THAN_ONCE,
    PlainDecimalField,
    PlainIntegerField,
    QueryParamsSerializer,
    StrictSerializer,
)


class StockInput(StrictSerializer):
    read_only_names = ("sku",)

    stock = serializers.IntegerField(min_value=0)
    total = serializers.IntegerField(read_only=True)


class LabelInput(StrictSerializer):
    name = serializers.CharField(required=False)
    slug = serializers.SlugField(required=False)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    note = serializers.CharField(required=False, allow_null=True)


class AmountInput(StrictSerializer):
    price = PlainDecimalField(max_digits=10, decimal_places=2, required=False)
    count = PlainIntegerField(required=False)


class SearchParams(QueryParamsSerializer):
    q = serializers.CharField(required=False)
    page_after = serializers.IntegerField(required=False, min_value=0)
    tags = serializers.ListField(child=serializers.CharField(), required=False)


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


@pytest.mark.parametrize("text", ["1e3", "1E1", "1_000", "\u0663", "0x10", "12,50"])
def test_a_decimal_written_other_than_in_ascii_digits_is_refused(text: str) -> None:
    payload = AmountInput(data={"price": text})

    assert not payload.is_valid()
    assert payload.errors == {"price": ["A valid number is required."]}


@pytest.mark.parametrize("text", ["1_000", "\u0663", "5.0", "5.", "1e3"])
def test_a_whole_number_written_other_than_in_ascii_digits_is_refused(text: str) -> None:
    payload = AmountInput(data={"count": text})

    assert not payload.is_valid()
    assert payload.errors == {"count": ["A valid integer is required."]}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"price": " 12.5 ", "count": "+7"}, {"price": Decimal("12.50"), "count": 7}),
        ({"price": ".5", "count": "0"}, {"price": Decimal("0.50"), "count": 0}),
        ({"price": 12.5, "count": 3.0}, {"price": Decimal("12.50"), "count": 3}),
        ({"price": 1e3, "count": 1000}, {"price": Decimal("1000.00"), "count": 1000}),
    ],
)
def test_plain_numbers_and_json_numbers_are_accepted(
    data: dict[str, object], expected: dict[str, object]
) -> None:
    payload = AmountInput(data=data)

    assert payload.is_valid(), payload.errors
    assert payload.validated_data == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0." + "0" * 900, Decimal("0.00")), ("-0." + "0" * 900, Decimal("0.00"))],
)
def test_any_number_of_zeros_past_the_places_is_read_exactly(text: str, expected: Decimal) -> None:
    payload = AmountInput(data={"price": text})

    assert payload.is_valid(), payload.errors
    assert str(payload.validated_data["price"]) == str(expected)


def test_a_long_number_with_zeros_past_the_places_is_refused_for_its_digits() -> None:
    payload = AmountInput(data={"price": "1" * 900 + ".000"})

    assert not payload.is_valid()
    assert payload.errors == {"price": ["Ensure that there are no more than 10 digits in total."]}


def test_a_query_parameter_given_twice_is_refused_by_name_not_read_as_its_last_value() -> None:
    params = SearchParams(data=QueryDict("q=heather&q=clover&page_after=-1"))

    assert not params.is_valid()
    assert params.errors == {
        "q": [GIVEN_MORE_THAN_ONCE],
        "page_after": ["Ensure this value is greater than or equal to 0."],
    }


def test_a_form_field_given_twice_is_refused_by_name_not_read_as_its_last_value() -> None:
    payload = LabelInput(data=QueryDict("name=Heather&name=Clover&tags=raw&tags=british"))

    assert not payload.is_valid()
    assert payload.errors == {"name": [FIELD_GIVEN_MORE_THAN_ONCE]}


def test_a_form_reads_every_value_of_a_list_field() -> None:
    payload = LabelInput(data=QueryDict("name=Heather&tags=raw&tags=british"))

    assert payload.is_valid(), payload.errors
    assert payload.validated_data == {"name": "Heather", "tags": ["raw", "british"]}


def test_a_list_query_parameter_reads_every_value_given() -> None:
    params = SearchParams(data=QueryDict("q=heather&tags=raw&tags=british"))

    assert params.is_valid(), params.errors
    assert params.validated_data == {"q": "heather", "tags": ["raw", "british"]}
