"""Requests Django refuses before any view, and unknown paths: JSON under /api/, HTML elsewhere."""

import pytest
from django.test import Client

FORM = "application/x-www-form-urlencoded"


@pytest.mark.django_db
# With DEBUG on (make run), Django answers refused requests with its HTML debug page, not
# handler400: the API's exception handler must answer them itself.
@pytest.mark.parametrize("debug", [False, True], ids=["debug off", "debug on"])
def test_an_api_form_body_with_too_many_fields_is_a_json_400(settings, debug: bool) -> None:
    settings.DEBUG = debug
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    body = "&".join(f"f{number}=x" for number in range(11))

    response = Client().post("/api/auth/token/", body, content_type=FORM)

    assert response.status_code == 400
    assert response.json() == {
        "detail": "The request has more than 10 fields.",
        "code": "too_many_fields",
    }


@pytest.mark.django_db
def test_an_api_multipart_field_over_the_upload_limit_is_a_json_413(settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000

    response = Client().post("/api/auth/token/", {"username": "a" * 1_001, "password": "b"})

    assert response.status_code == 413
    assert response.json() == {
        "detail": "The request body is larger than 1000 bytes.",
        "code": "request_too_large",
    }


def test_an_api_request_for_a_disallowed_host_is_a_json_400_that_names_no_setting() -> None:
    response = Client(HTTP_HOST="evil.example").get("/api/products/")

    assert response.status_code == 400
    assert response.json() == {"detail": "Bad request.", "code": "bad_request"}


def test_outside_the_api_a_refused_request_gets_django_s_html_400() -> None:
    response = Client(HTTP_HOST="evil.example").get("/chat/")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


def test_an_unknown_api_path_is_a_json_404_and_an_unknown_page_an_html_one() -> None:
    api = Client().get("/api/no-such-thing/")
    page = Client().get("/no-such-page/")

    assert (api.status_code, api.json()) == (404, {"detail": "Not found.", "code": "not_found"})
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")
