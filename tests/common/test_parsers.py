import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

TOKEN_URL = "/api/auth/token/"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"[" * 5_000 + b"]" * 5_000, "application/json"),
        (b'{"username": "a", "password": "b"}', "application/json; charset=rot13"),
        (b'{"username": "a", "password": "b"}', "application/json; charset=zlib"),
        (b'{"username": "\xff"}', "application/json"),
        (b'{"username": 1' + b"0" * 5_000 + b"}", "application/json"),
    ],
    ids=["nested", "rot13", "zlib", "not-utf8", "huge-int"],
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
