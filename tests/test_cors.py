"""Pages of the origins CORS_ALLOWED_ORIGINS lists (a chat widget on the shop's own site) may call
the API from a browser; other origins get no CORS headers, so their browsers refuse."""

from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from tests.catalog.factories import ProductFactory
from tests.support.browser import needs_chromium
from tests.support.loopback_http import HtmlHandler, serving

SHOP = "https://shop.example.com"

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop_origin_allowed(settings) -> None:
    settings.CORS_ALLOWED_ORIGINS = [SHOP]


def _preflight(path: str, *, origin: str, method: str, headers: str) -> dict[str, str]:
    response = APIClient().options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
    )
    assert response.status_code == 200
    return {name.lower(): value for name, value in response.headers.items()}


def test_a_preflight_from_an_allowed_origin_allows_the_api_s_own_headers(
    shop_origin_allowed: None,
) -> None:
    headers = _preflight(
        "/api/conversations/1/messages/",
        origin=SHOP,
        method="POST",
        headers="authorization, content-type, idempotency-key, x-request-id",
    )

    assert headers["access-control-allow-origin"] == SHOP
    allowed = {name.strip() for name in headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key", "x-request-id"} <= allowed
    assert {"last-event-id", "if-none-match"} <= allowed  # a stream resumed, a GET revalidated
    assert "if-match" in allowed  # a conditional PATCH
    assert "POST" in headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in headers  # bearer tokens, never cookies


def test_a_preflight_from_another_origin_is_not_allowed(shop_origin_allowed: None) -> None:
    headers = _preflight(
        "/api/conversations/", origin="https://evil.example", method="POST", headers="authorization"
    )

    assert "access-control-allow-origin" not in headers


def test_an_answer_to_an_allowed_origin_lets_its_script_read_its_headers(
    shop_origin_allowed: None,
) -> None:
    ProductFactory.create(sku="BH-1")

    response = APIClient().get("/api/products/BH-1/", HTTP_ORIGIN=SHOP)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SHOP
    exposed = {name.strip() for name in response["Access-Control-Expose-Headers"].split(",")}
    assert {"etag", "location", "retry-after", "x-request-id"} <= exposed
    assert "origin" in response["Vary"].lower()  # a shared cache keeps one answer per origin


def test_an_error_answer_carries_the_allowed_origin_so_the_page_can_read_it(
    shop_origin_allowed: None,
) -> None:
    response = APIClient().get("/api/products/?min_price=abc", HTTP_ORIGIN=SHOP)

    assert response.status_code == 400
    assert response["Access-Control-Allow-Origin"] == SHOP
    assert response.json()["errors"]["min_price"]


def test_only_the_api_answers_other_origins(shop_origin_allowed: None) -> None:
    response = APIClient().get("/admin/login/", HTTP_ORIGIN=SHOP)

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


def test_by_default_no_other_origin_is_allowed() -> None:
    response = APIClient().get("/api/categories/", HTTP_ORIGIN=SHOP)

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


def test_a_star_allows_any_origin_without_credentials(settings) -> None:
    settings.CORS_ALLOW_ALL_ORIGINS = True

    response = APIClient().get("/api/categories/", HTTP_ORIGIN="https://any.example")

    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response


class _WidgetPage(HtmlHandler):
    """A page of another origin, as a chat widget on the shop's site would be."""

    def do_GET(self) -> None:
        self.answer_html(200, b"<!doctype html><title>The shop</title><p>Our honey</p>")


@pytest.fixture
def widget_origin() -> Iterator[str]:
    """A second origin on loopback (127.0.0.1, where the live server is on localhost)."""
    with serving(_WidgetPage) as url:
        yield url


# A widget's first calls: a guest's tokens, then a conversation opened with them (both preflighted:
# JSON, then an Authorization header). What the page's script could read of each answer.
WIDGET_SCRIPT = """async (api) => {
  try {
    const guest = await fetch(api + "/api/auth/guest/", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"});
    const tokens = await guest.json();
    const opened = await fetch(api + "/api/conversations/", {
      method: "POST",
      headers: {"Content-Type": "application/json", "Authorization": "Bearer " + tokens.access,
                "X-Request-ID": "widget-1"},
      body: JSON.stringify({title: "From the shop's page"})});
    return {guest: guest.status, opened: opened.status,
            requestId: opened.headers.get("X-Request-ID"), title: (await opened.json()).title};
  } catch (error) {
    return {error: String(error)};
  }
}"""


@pytest.mark.django_db(transaction=True)
@needs_chromium
def test_a_page_of_an_allowed_origin_opens_a_conversation_from_a_real_browser(
    live_server, browser_page, widget_origin: str, settings
) -> None:
    page = browser_page
    page.goto(widget_origin)

    refused = page.evaluate(WIDGET_SCRIPT, live_server.url)
    settings.CORS_ALLOWED_ORIGINS = [widget_origin]
    allowed = page.evaluate(WIDGET_SCRIPT, live_server.url)

    assert "Failed to fetch" in refused["error"]
    assert allowed == {
        "guest": 201,
        "opened": 201,
        "requestId": "widget-1",
        "title": "From the shop's page",
    }
