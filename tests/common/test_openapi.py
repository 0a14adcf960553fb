"""The published OpenAPI schema says what the API does, for clients generated from it."""

import re
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def test_catalogue_reads_need_no_credentials_and_writes_do(schema) -> None:
    paths = schema["paths"]

    for path in ["/api/products/", "/api/products/{sku}/", "/api/categories/", "/api/knowledge/"]:
        assert {} in paths[path]["get"]["security"], path
        assert "401" in paths[path]["get"]["responses"], path  # a bad token is refused
    assert {} not in paths["/api/products/{sku}/"]["patch"]["security"]
    assert {} not in paths["/api/products/"]["post"]["security"]


def test_a_partial_update_body_has_no_defaults_to_send(schema) -> None:
    components = schema["components"]["schemas"]
    patched = [name for name in components if name.startswith("Patched")]

    assert set(patched) >= {"PatchedProductInputRequest", "PatchedKnowledgeArticleInputRequest"}
    for name in patched:
        assert not [f for f, field in components[name]["properties"].items() if "default" in field]
    # A create's body keeps them: the server applies them there.
    assert components["ProductCreateRequest"]["properties"]["is_active"]["default"] is True


def test_output_fields_always_present_are_required(schema) -> None:
    components = schema["components"]["schemas"]

    for name in ["ConversationOutput", "MessageOutput", "AnsweringRun", "Category"]:
        component = components[name]
        assert set(component["required"]) == set(component["properties"]), name
    run = components["RunOutput"]
    # Staff alone see a run's usage.
    assert set(run["properties"]) - set(run["required"]) == {"usage"}
    assert run["properties"]["reply"]["allOf"] == [{"$ref": "#/components/schemas/MessageOutput"}]


def test_every_component_is_named_for_what_it_is(schema) -> None:
    generic = {"CreateRequest", "Create", "InputRequest", "Output"}

    assert not generic & set(schema["components"]["schemas"])


def test_ids_in_paths_are_uuids(schema) -> None:
    for path in ["/api/conversations/{conversation_id}/", "/api/runs/{run_id}/"]:
        in_path = [p for p in schema["paths"][path]["get"]["parameters"] if p["in"] == "path"]
        assert [p["schema"] for p in in_path] == [{"type": "string", "format": "uuid"}], path


def test_price_parameters_take_what_the_server_takes(schema) -> None:
    parameters = schema["paths"]["/api/products/"]["get"]["parameters"]
    (min_price,) = [p for p in parameters if p["name"] == "min_price"]
    body = schema["components"]["schemas"]["ProductCreateRequest"]["properties"]["price"]

    for pattern in [min_price["schema"]["pattern"], body["pattern"]]:
        taken = [
            value
            for value in ["10", "9.99", "12.500", ".5", "-1", "12.505", "", "."]
            if re.match(pattern, value)
        ]
        assert taken == ["10", "9.99", "12.500", ".5"]


def test_a_product_s_counts_say_the_largest_the_server_takes(schema) -> None:
    body = schema["components"]["schemas"]["ProductCreateRequest"]["properties"]

    assert [body[name]["maximum"] for name in ("stock", "weight_grams")] == [2**31 - 1] * 2


def test_a_message_s_cards_and_idempotency_key_are_described_whole(schema) -> None:
    cards = schema["components"]["schemas"]["MessageOutput"]["properties"]["cards"]
    card = schema["components"]["schemas"]["ProductCard"]
    posted = schema["paths"]["/api/conversations/{conversation_id}/messages/"]["post"]
    (key,) = [p for p in posted["parameters"] if p["name"] == "Idempotency-Key"]

    assert cards["items"] == {"$ref": "#/components/schemas/ProductCard"}
    assert set(card["required"]) == {"sku", "name", "price", "currency", "stock", "in_stock"}
    assert key["schema"] == {"type": "string", "minLength": 1, "maxLength": 100}


def test_a_page_is_a_number_from_1_or_last(schema) -> None:
    parameters = schema["paths"]["/api/products/"]["get"]["parameters"]
    (page,) = [p for p in parameters if p["name"] == "page"]

    assert page["schema"] == {
        "oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": ["last"]}]
    }


def test_the_tags_filter_says_how_long_a_tag_may_be(schema) -> None:
    parameters = schema["paths"]["/api/products/"]["get"]["parameters"]
    (tags,) = [p for p in parameters if p["name"] == "tags"]

    assert "each tag at most 40 characters" in tags["description"]
