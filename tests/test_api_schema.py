"""Schemathesis against the drf-spectacular schema: no server errors, no schema violations."""

import re
from collections.abc import Iterator

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from beemanhoney.wsgi import application
from tests.catalog.factories import KnowledgeArticleFactory, ProductFactory
from tests.conversations.factories import ConversationFactory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def in_process_requests(db) -> Iterator[None]:
    """Called in-process, the WSGI handler would close the test's connection after each
    request; Django's test client unhooks this the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def customer_token(db) -> str:
    ProductFactory.create_batch(3)
    KnowledgeArticleFactory.create()
    conversation = ConversationFactory.create()
    return str(RefreshToken.for_user(conversation.owner).access_token)


schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))


@schema.parametrize()
@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
def test_every_operation_conforms_to_the_schema(
    case, customer_token: str, in_process_requests: None
) -> None:
    case.call_and_validate(
        app=application,
        headers={"Authorization": f"Bearer {customer_token}"},
        checks=CHECKS,
    )


def test_the_interactive_docs_are_served_without_the_network(client) -> None:
    page = client.get("/api/docs/").content.decode()

    assert "swagger-ui" in page
    # Its scripts and styles from this site, not a CDN (a "cdn" anywhere in the page could be
    # in its random CSRF token).
    loaded = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert loaded
    assert all(url.startswith("/") and not url.startswith("//") for url in loaded), loaded
    assert client.get("/api/schema/").status_code == 200


def test_every_paged_list_documents_its_page_parameters() -> None:
    operations = [
        operation
        for path in schema.raw_schema["paths"].values()
        for method, operation in path.items()
        if method == "get" and "Page" in str(operation["responses"].get("200"))
    ]

    documented = {
        operation["operationId"]: {p["name"] for p in operation.get("parameters", [])}
        >= {"page", "page_size"}
        for operation in operations
    }

    assert len(documented) == 5
    assert all(documented.values()), documented


@pytest.mark.django_db
def test_the_schema_takes_a_language_django_knows_and_no_version_text(client) -> None:
    british = client.get("/api/schema/?lang=en-gb")
    unknown = client.get("/api/schema/?lang=" + "x" * 4000)
    versioned = client.get("/api/schema/?version=1%0A")

    assert british.status_code == 200
    assert unknown.status_code == 400
    assert unknown.json()["errors"] == {"lang": ["Not a language code, such as en-gb."]}
    assert versioned.status_code == 200
    assert versioned["Content-Disposition"] == 'inline; filename="Beeman Honey assistant API.yaml"'


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "accept", "status", "detail", "code"),
    [
        ("post", "*/*", 405, 'Method "POST" not allowed.', "method_not_allowed"),
        (
            "put",
            "application/vnd.oai.openapi",
            405,
            'Method "PUT" not allowed.',
            "method_not_allowed",
        ),
        ("get", "text/html", 406, "Could not satisfy the request Accept header.", "not_acceptable"),
    ],
)
def test_the_schemas_errors_are_json_in_the_apis_error_shape(
    client, method: str, accept: str, status: int, detail: str, code: str
) -> None:
    response = getattr(client, method)("/api/schema/", HTTP_ACCEPT=accept)

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": detail, "code": code}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("accept", "content_type", "starts"),
    [
        ("*/*", "application/vnd.oai.openapi; charset=utf-8", b"openapi: 3.0.3"),
        ("application/yaml", "application/yaml; charset=utf-8", b"openapi: 3.0.3"),
        ("application/json", "application/json", b"{"),
        ("application/vnd.oai.openapi+json", "application/vnd.oai.openapi+json", b"{"),
        # Swagger UI's request.
        ("application/json,*/*", "application/json", b"{"),
    ],
)
def test_the_schema_is_yaml_unless_json_is_asked_for(
    client, accept: str, content_type: str, starts: bytes
) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT=accept)

    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response.content.startswith(starts)
