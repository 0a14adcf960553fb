import pytest

from catalog.models import Product
from catalog.statement_templates import StatementTemplate


def test_a_slot_takes_its_value_wherever_its_placeholder_was_compiled() -> None:
    compiled = Product.objects.filter(name="<name>", slug="<name>", sku="BH-1")

    template = StatementTemplate.compile(compiled, name="<name>")

    sql, params = Product.objects.filter(
        name="Clove", slug="Clove", sku="BH-1"
    ).query.sql_with_params()
    assert (template.sql, template.bind(name="Clove")) == (sql, list(params))


def test_a_placeholder_matches_only_parameters_of_its_own_type() -> None:
    compiled = Product.objects.filter(stock=7, sku="7")

    template = StatementTemplate.compile(compiled, sku="7")

    _, params = Product.objects.filter(stock=7, sku="BH-9").query.sql_with_params()
    assert template.bind(sku="BH-9") == list(params)


def test_a_placeholder_the_statement_does_not_hold_is_an_error() -> None:
    with pytest.raises(ValueError, match="'name'"):
        StatementTemplate.compile(Product.objects.filter(sku="BH-1"), name="<name>")


def test_values_for_slots_a_template_lacks_are_ignored() -> None:
    template = StatementTemplate.compile(Product.objects.filter(sku="<sku>"), sku="<sku>")

    assert template.bind(sku="BH-2", name="unused") == ["BH-2"]
