from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, FakePayload, encode_multipart
from rest_framework.test import APIClient

from catalog.models import Product
from tests.catalog.factories import CatalogStaffFactory, CategoryFactory

TOKEN_URL = "/api/auth/token/"
PRODUCTS_URL = "/api/products/"
CSRF_TOKEN = "a" * 32


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"[" * 5_000 + b"]" * 5_000, "application/json"),
        (b'{"username": "a", "password": "b"}', "application/json; charset=rot13"),
        (b'{"username": "a", "password": "b"}', "application/json; charset=zlib"),
        (b'{"username": "\xff"}', "application/json"),
        (b'{"username": 1' + b"0" * 5_000 + b"}", "application/json"),
        (b'{"username": "a", "password": "b", "username": "c"}', "application/json"),
    ],
    ids=["nested", "rot13", "zlib", "not-utf8", "huge-int", "repeated-key"],
)
def test_a_malformed_json_body_is_a_400(body: bytes, content_type: str) -> None:
    response = APIClient().post(TOKEN_URL, body, content_type=content_type)

    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")


@pytest.mark.django_db
def test_a_json_body_over_the_upload_limit_is_a_413(settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    body = b'{"username": "' + b"a" * 1_000 + b'", "password": "b"}'

    response = APIClient().post(TOKEN_URL, body, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["detail"] == "The request body is larger than 1000 bytes."


@pytest.mark.django_db
def test_a_form_body_over_the_upload_limit_is_a_413(settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    body = "username=" + "a" * 1_000 + "&password=b"

    response = APIClient().post(TOKEN_URL, body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 413
    assert response.json()["detail"] == "The request body is larger than 1000 bytes."


@pytest.mark.django_db
def test_a_form_body_within_the_limit_still_reaches_the_view() -> None:
    response = APIClient().post(TOKEN_URL, {"username": "nobody", "password": "wrong"})

    assert response.status_code == 401


@pytest.mark.django_db
def test_a_well_formed_json_body_still_reaches_the_view() -> None:
    response = APIClient().post(
        TOKEN_URL, {"username": "nobody", "password": "wrong"}, format="json"
    )

    assert response.status_code == 401


@pytest.mark.django_db
def test_a_multipart_file_over_the_upload_limit_is_a_413(settings) -> None:
    # Django limits a multipart body's fields, not its files: no API view takes a file, and an
    # anonymous POST could write any size of one to a temporary file.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    upload = SimpleUploadedFile("big.bin", b"x" * 2_000)

    response = APIClient().post(
        TOKEN_URL, {"username": "a", "password": "b", "file": upload}, format="multipart"
    )

    assert response.status_code == 413
    assert response.json()["detail"] == "The request body is larger than 1000 bytes."


@pytest.fixture
def session_client() -> Client:
    """Staff logged in with a session, CSRF checked as for a browser (Django's test client skips
    the check unless asked), the token in a header as the chat page sends it."""
    client = Client(enforce_csrf_checks=True, headers={"X-CSRFToken": CSRF_TOKEN})
    client.force_login(CatalogStaffFactory.create())
    client.cookies["csrftoken"] = CSRF_TOKEN
    return client


def product_form(**extra: object) -> dict[str, object]:
    category = CategoryFactory.create(slug="raw-honey")
    return {
        "sku": "BH-NEW-001",
        "name": "Linden Honey",
        "category": category.slug,
        "price": "9.50",
    } | extra


@pytest.mark.django_db
def test_a_session_multipart_post_over_the_limit_is_a_413_before_django_parses_it(
    settings, session_client: Client
) -> None:
    # SessionAuthentication's CSRF check reads request.POST before the view runs. DRF hands it
    # DRF's request, whose POST is parsed by these parsers: Django's own multipart parser, which
    # streams files of any size to temporary files, never runs.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    upload = SimpleUploadedFile("big.bin", b"x" * 2_000)

    response = session_client.post(PRODUCTS_URL, product_form(file=upload))

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "The request body is larger than 1000 bytes.",
        "code": "request_too_large",
    }
    assert not hasattr(response.wsgi_request, "_files")  # Django parsed no part of it
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_a_session_multipart_post_within_the_limit_creates_the_product(
    settings, session_client: Client
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000

    response = session_client.post(PRODUCTS_URL, product_form())

    assert response.status_code == 201, response.json()
    assert Product.objects.filter(sku="BH-NEW-001").exists()


@pytest.mark.django_db
def test_a_session_post_without_its_csrf_token_is_refused() -> None:
    # What makes the two tests above pass through the CSRF check rather than around it.
    client = Client(enforce_csrf_checks=True)
    client.force_login(CatalogStaffFactory.create())
    client.cookies["csrftoken"] = CSRF_TOKEN

    response = client.post(PRODUCTS_URL, product_form())

    assert response.status_code == 403
    assert response.json()["detail"].startswith("CSRF Failed")
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_an_api_body_sent_without_a_content_length_is_never_read(
    settings, session_client: Client
) -> None:
    # A chunked body: gunicorn passes no CONTENT_LENGTH (and refuses one beside chunked), and
    # Django reads a body without one as empty, so neither a parser nor Django reads any of it.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    upload = SimpleUploadedFile("big.bin", b"x" * 2_000)
    body = encode_multipart(BOUNDARY, product_form(file=upload))
    stream = FakePayload(body)
    chunked: dict[str, Any] = {"CONTENT_LENGTH": "", "wsgi.input": stream}

    response = session_client.generic(
        "POST", PRODUCTS_URL, body, content_type=MULTIPART_CONTENT, **chunked
    )

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"sku", "name", "category", "price"}
    assert not stream.read_started
    assert not Product.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/auth/guest/", "/api/conversations/"])
def test_a_body_over_the_limit_is_a_413_where_the_view_reads_no_body_too(
    settings, url: str
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    users = User.objects.count()

    response = APIClient().post(url, b"x" * 1_001, content_type="application/octet-stream")

    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert User.objects.count() == users
