import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from conversations import services
from conversations.models import Conversation, Message
from tests.catalog.factories import CategoryFactory, ProductFactory
from tests.conversations.factories import ConversationFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_customer_posting_faster_than_the_rate_gets_429_and_nothing_is_stored(
    settings,
) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "message_post": "3/min"}
    conversation = ConversationFactory.create()
    client = APIClient()
    client.force_authenticate(conversation.owner)
    url = f"/api/conversations/{conversation.id}/messages/"

    codes = [client.post(url, {"content": f"message {n}"}).status_code for n in range(3)]
    refused = client.post(url, {"content": "one too many"})

    assert codes == [202, 202, 202]
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert not Message.objects.filter(content="one too many").exists()


def test_one_customers_rate_does_not_limit_another(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "message_post": "1/min"}
    first, second = ConversationFactory.create_batch(2)
    clients = [APIClient(), APIClient()]
    clients[0].force_authenticate(first.owner)
    clients[1].force_authenticate(second.owner)

    codes = [
        clients[0].post(f"/api/conversations/{first.id}/messages/", {"content": "a"}).status_code,
        clients[1].post(f"/api/conversations/{second.id}/messages/", {"content": "b"}).status_code,
    ]

    assert codes == [202, 202]


def test_the_daily_quota_applies_across_conversations(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "message_daily": "2/day"}
    first = ConversationFactory.create()
    second = ConversationFactory.create(owner=first.owner)
    client = APIClient()
    client.force_authenticate(first.owner)

    codes = [
        client.post(f"/api/conversations/{c.id}/messages/", {"content": "hi"}).status_code
        for c in (first, second, second)
    ]

    assert codes == [202, 202, 429]


def test_the_daily_quota_per_address_counts_every_guest_it_made(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "message_daily_address": "2/day"}

    def post_as_new_guest(address: str) -> int:
        client = APIClient(REMOTE_ADDR=address)
        token = client.post("/api/auth/guest/").json()["access"]
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        conversation = client.post("/api/conversations/", {}).json()["id"]
        url = f"/api/conversations/{conversation}/messages/"
        return client.post(url, {"content": "hi"}).status_code

    codes = [post_as_new_guest("203.0.113.11") for _ in range(3)]
    elsewhere = post_as_new_guest("203.0.113.12")

    assert codes == [202, 202, 429]
    assert elsewhere == 202


def test_guest_creation_is_limited_per_client_ip(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "guest_create": "2/hour"}
    client = APIClient(REMOTE_ADDR="203.0.113.7")

    codes = [client.post("/api/auth/guest/").status_code for _ in range(3)]
    elsewhere = APIClient(REMOTE_ADDR="203.0.113.8").post("/api/auth/guest/")

    assert codes == [201, 201, 429]
    assert elsewhere.status_code == 201


@pytest.mark.parametrize(
    ("path", "rate", "post"),
    [
        ("/api/auth/guest/", {"guest_create": "2/hour"}, {}),
        ("/api/auth/token/", {"login": "2/min"}, {"username": "maya", "password": "wrong"}),
        ("/api/auth/token/refresh/", {"read": "2/min"}, {"refresh": "not.a.token"}),
    ],
)
def test_a_method_the_auth_routes_do_not_answer_is_a_405_their_rates_do_not_count(
    settings, path: str, rate: dict[str, str], post: dict[str, str]
) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, **rate}
    client = APIClient(REMOTE_ADDR="203.0.113.11")

    strays = [client.get(path).status_code for _ in range(3)]
    posted = client.post(path, post)

    assert strays == [405, 405, 405]
    assert posted.status_code != 429


def test_guest_creation_counts_an_ipv6_clients_whole_64_network_as_one_address(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "guest_create": "2/hour"}

    codes = [
        APIClient(REMOTE_ADDR=f"2001:db8:1:2::{n:x}").post("/api/auth/guest/").status_code
        for n in (1, 2, 0xFFFF)
    ]
    next_network = APIClient(REMOTE_ADDR="2001:db8:1:3::1").post("/api/auth/guest/")
    behind_a_proxy = APIClient(REMOTE_ADDR="::ffff:203.0.113.30")
    as_ipv4 = APIClient(REMOTE_ADDR="203.0.113.30")
    mapped = [behind_a_proxy.post("/api/auth/guest/").status_code for _ in range(2)]

    assert codes == [201, 201, 429]
    assert next_network.status_code == 201
    # An IPv4 address mapped into IPv6 is the IPv4 address, not its /64 (every IPv4 client's).
    assert mapped == [201, 201]
    assert as_ipv4.post("/api/auth/guest/").status_code == 429


def test_password_guesses_from_one_ipv6_network_through_a_proxy_share_a_count(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "login": "1/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = APIClient(REMOTE_ADDR="10.0.0.2")
    guess = {"username": "sam", "password": "wrong"}

    codes = [
        proxy.post("/api/auth/token/", guess, HTTP_X_FORWARDED_FOR=client).status_code
        for client in ("2001:db8:7::1", "2001:db8:7::2", "2001:db8:8::1")
    ]

    assert codes == [401, 429, 401]


def test_conversations_opened_are_limited_per_customer(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "conversation_create": "2/hour"}
    customer, other = _client_for(UserFactory.create()), _client_for(UserFactory.create())

    codes = [customer.post("/api/conversations/", {}).status_code for _ in range(3)]
    listed = customer.get("/api/conversations/")
    elsewhere = other.post("/api/conversations/", {})

    assert codes == [201, 201, 429]
    assert listed.status_code == 200
    assert listed.json()["count"] == 2
    assert elsewhere.status_code == 201


def test_only_conversations_opened_count_against_the_customer_s_rate(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "conversation_create": "2/hour"}
    customer = _client_for(UserFactory.create())

    refused = [customer.post("/api/conversations/", {"titel": "typo"}).status_code for _ in "ab"]
    opened = [customer.post("/api/conversations/", {}).status_code for _ in "ab"]
    over = customer.post("/api/conversations/", {})

    assert refused == [400, 400]
    assert opened == [201, 201]
    assert over.status_code == 429


def test_password_logins_are_limited_per_client_ip(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "login": "3/min"}
    guess = {"username": "maya", "password": "wrong"}
    client = APIClient(REMOTE_ADDR="203.0.113.9")

    codes = [client.post("/api/auth/token/", guess).status_code for _ in range(4)]
    elsewhere = APIClient(REMOTE_ADDR="203.0.113.10").post("/api/auth/token/", guess)

    assert codes == [401, 401, 401, 429]
    assert elsewhere.status_code == 401


def test_page_size_is_capped() -> None:
    ProductFactory.create_batch(105, category=CategoryFactory.create())

    body = APIClient().get("/api/products/?page_size=100000").json()

    assert body["count"] == 105
    assert len(body["results"]) == 100


def _client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_retry_of_a_stored_message_is_answered_after_the_rate_is_spent(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "message_post": "2/min"}
    conversation = ConversationFactory.create()
    client = _client_for(conversation.owner)
    url = f"/api/conversations/{conversation.id}/messages/"
    first = client.post(url, {"content": "Hello"}, HTTP_IDEMPOTENCY_KEY="key-1").json()
    client.post(url, {"content": "Any heather honey?"}, HTTP_IDEMPOTENCY_KEY="key-2")

    retry = client.post(url, {"content": "Hello"}, HTTP_IDEMPOTENCY_KEY="key-1")
    new = client.post(url, {"content": "And manuka?"}, HTTP_IDEMPOTENCY_KEY="key-3")

    assert retry.status_code == 202
    assert retry.json()["message"]["id"] == first["message"]["id"]
    assert new.status_code == 429
    assert Message.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_posts_of_one_idempotency_key_at_once_count_once(
    settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "message_post": "2/min"}
    conversation = ConversationFactory.create()
    url = f"/api/conversations/{conversation.id}/messages/"
    both_counted = threading.Barrier(2, timeout=10)
    conversation_locked = services._conversation_locked

    def locked_once_both_are_counted(pk: UUID) -> Conversation:
        both_counted.wait()  # each found no message under the key, and took the rate's count
        return conversation_locked(pk)

    monkeypatch.setattr(services, "_conversation_locked", locked_once_both_are_counted)

    def post(_: int) -> Any:
        try:
            return _client_for(conversation.owner).post(
                url, {"content": "Hello"}, HTTP_IDEMPOTENCY_KEY="key-1"
            )
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(post, range(2)))
    monkeypatch.undo()
    new = _client_for(conversation.owner).post(
        url, {"content": "Any heather honey?"}, HTTP_IDEMPOTENCY_KEY="key-2"
    )

    assert [answer.status_code for answer in answers] == [202, 202]
    assert len({answer.json()["message"]["id"] for answer in answers}) == 1
    assert new.status_code == 202  # one message stored of two a minute
    assert Message.objects.count() == 2


def test_only_posts_that_store_a_message_count_against_the_rates(settings) -> None:
    settings.THROTTLE_RATES = {
        **settings.THROTTLE_RATES,
        "message_post": "2/min",
        "message_daily": "2/day",
        "message_daily_address": "2/day",
    }
    conversation = ConversationFactory.create()
    closed = ConversationFactory.create(owner=conversation.owner, status="closed")
    theirs = ConversationFactory.create()
    client = _client_for(conversation.owner)
    url = f"/api/conversations/{conversation.id}/messages/"
    client.post(url, {"content": "Hello"}, HTTP_IDEMPOTENCY_KEY="key-1")

    refused = [
        client.post(url, {"content": "   "}, format="json").status_code,
        client.post(url, {"content": "Other"}, HTTP_IDEMPOTENCY_KEY="key-1").status_code,
        client.post(f"/api/conversations/{theirs.id}/messages/", {"content": "hi"}).status_code,
        client.post(f"/api/conversations/{closed.id}/messages/", {"content": "hi"}).status_code,
    ]
    stored = client.post(url, {"content": "Any heather honey?"})
    over = client.post(url, {"content": "And manuka?"})

    assert refused == [400, 422, 404, 409]
    assert stored.status_code == 202
    assert over.status_code == 429
    assert Message.objects.count() == 2


def test_a_post_one_rate_refuses_is_not_counted_by_the_others(settings) -> None:
    settings.THROTTLE_RATES = {
        **settings.THROTTLE_RATES,
        "message_post": "2/min",
        "message_daily": "1/day",
    }
    conversation = ConversationFactory.create()
    client = _client_for(conversation.owner)
    url = f"/api/conversations/{conversation.id}/messages/"
    client.post(url, {"content": "Hello"})
    refused_for_the_day = client.post(url, {"content": "Any heather honey?"})
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "message_daily": "10/day"}

    next_minute = client.post(url, {"content": "And manuka?"})

    assert refused_for_the_day.status_code == 429
    assert next_minute.status_code == 202


ADMIN_LOGIN = "/admin/login/"


def test_admin_password_guesses_are_limited_per_client_ip(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "login": "3/min"}
    StaffFactory.create(username="sam")
    guess = {"username": "sam", "password": "wrong", "next": "/admin/"}
    right = {**guess, "password": "correct horse battery"}
    client = Client(REMOTE_ADDR="203.0.113.21")

    codes = [client.post(ADMIN_LOGIN, guess).status_code for _ in range(3)]
    refused = client.post(ADMIN_LOGIN, guess)
    refused_right = client.post(ADMIN_LOGIN, right)
    form = client.get(ADMIN_LOGIN)
    elsewhere = Client(REMOTE_ADDR="203.0.113.22").post(ADMIN_LOGIN, right)

    assert codes == [200, 200, 200]  # the form again, saying the password is wrong
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert refused_right.status_code == 429
    assert "_auth_user_id" not in client.session
    assert form.status_code == 200
    assert elsewhere.status_code == 302
    assert elsewhere.headers["Location"] == "/admin/"


def test_the_admin_and_the_api_share_one_login_count_per_client_ip(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "login": "2/min"}
    guess = {"username": "sam", "password": "wrong"}

    api = APIClient(REMOTE_ADDR="203.0.113.23").post("/api/auth/token/", guess)
    admin = Client(REMOTE_ADDR="203.0.113.23").post(ADMIN_LOGIN, guess)
    api_again = APIClient(REMOTE_ADDR="203.0.113.23").post("/api/auth/token/", guess)

    assert [api.status_code, admin.status_code, api_again.status_code] == [401, 200, 429]


def test_admin_logins_count_the_peer_not_a_forwarded_for_header_without_a_proxy(
    settings,
) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "login": "2/min"}
    client = Client(REMOTE_ADDR="203.0.113.24")
    guess = {"username": "sam", "password": "wrong"}

    codes = [
        client.post(ADMIN_LOGIN, guess, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(3)
    ]

    assert codes == [200, 200, 429]


def test_admin_logins_count_the_forwarded_client_behind_a_trusted_proxy(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "login": "1/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = Client(REMOTE_ADDR="10.0.0.2")
    guess = {"username": "sam", "password": "wrong"}

    codes = [
        proxy.post(ADMIN_LOGIN, guess, HTTP_X_FORWARDED_FOR=client).status_code
        for client in ("198.51.100.1", "198.51.100.2", "198.51.100.1")
    ]

    assert codes == [200, 200, 429]


def test_failed_logins_at_one_username_are_limited_from_every_address(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "login_account": "3/hour"}
    UserFactory.create(username="maya", password="right-horse-battery")
    guess = {"username": "maya", "password": "wrong"}

    # Each guess from an address of its own: the per-address rate never sees two.
    codes = [
        APIClient(REMOTE_ADDR=f"203.0.113.{n}").post("/api/auth/token/", guess).status_code
        for n in range(4)
    ]
    owner = APIClient(REMOTE_ADDR="198.51.100.7").post(
        "/api/auth/token/", {"username": "MAYA", "password": "right-horse-battery"}
    )
    other_account = APIClient(REMOTE_ADDR="203.0.113.9").post(
        "/api/auth/token/", {"username": "noah", "password": "wrong"}
    )

    assert codes == [401, 401, 401, 429]
    assert owner.status_code == 429  # the cost of the limit: held out as long as the guesser
    assert int(owner["Retry-After"]) > 0
    assert other_account.status_code == 401


def test_logins_that_succeed_do_not_count_against_the_account(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "login_account": "2/hour"}
    UserFactory.create(username="maya", password="right-horse-battery")
    right = {"username": "maya", "password": "right-horse-battery"}

    signed_in = [
        APIClient(REMOTE_ADDR=f"203.0.113.{n}").post("/api/auth/token/", right).status_code
        for n in range(4)
    ]
    guesses = [
        APIClient(REMOTE_ADDR="198.51.100.7")
        .post("/api/auth/token/", {**right, "password": "wrong"})
        .status_code
        for _ in range(3)
    ]

    assert signed_in == [200] * 4
    assert guesses == [401, 401, 429]


def test_the_admin_login_shares_the_accounts_count_of_failed_logins(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "login_account": "2/hour"}
    StaffFactory.create(username="sam", password="right-horse-battery")
    guess = {"username": "sam", "password": "wrong"}

    api = APIClient(REMOTE_ADDR="203.0.113.1").post("/api/auth/token/", guess)
    form = Client(REMOTE_ADDR="203.0.113.2").post("/admin/login/", guess)
    refused = Client(REMOTE_ADDR="203.0.113.3").post(
        "/admin/login/", {**guess, "password": "right-horse-battery"}
    )

    assert (api.status_code, form.status_code) == (401, 200)  # the form shows its error
    assert refused.status_code == 429
    assert refused["Retry-After"]


@pytest.mark.parametrize("login_page", ["/api/auth/token/", "/admin/login/"])
def test_logins_refused_for_their_address_do_not_count_against_the_account(
    settings, login_page: str
) -> None:
    settings.THROTTLE_RATES = {
        **settings.THROTTLE_RATES,
        "login": "2/min",
        "login_account": "3/hour",
    }
    guess = {"username": "maya", "password": "wrong"}
    busy = Client(REMOTE_ADDR="203.0.113.1")

    codes = [busy.post(login_page, guess).status_code for _ in range(5)]
    # Two guesses were checked; the three refused for the address never reached the password.
    third = Client(REMOTE_ADDR="203.0.113.2").post(login_page, guess)
    fourth = Client(REMOTE_ADDR="203.0.113.3").post(login_page, guess)

    checked = 401 if login_page.startswith("/api/") else 200  # the form shows its error
    assert codes == [checked, checked, 429, 429, 429]
    assert third.status_code == checked
    assert fourth.status_code == 429


def test_a_login_with_a_lone_surrogate_username_is_refused_as_invalid_not_an_error() -> None:
    # JSON can spell half a UTF-16 pair; UTF-8 cannot encode it, so hashing it as-is raised.
    body = '{"username": "\\ud800", "password": "x"}'

    response = APIClient().post("/api/auth/token/", body, content_type="application/json")

    assert response.status_code == 400


@pytest.mark.parametrize(
    "spellings",
    [
        # White space either login strips.
        ["maya", " maya", "maya\t", "\u3000maya", "maya\u00a0"],
        # Full-width letters, which the admin's form reads as plain ones.
        ["maya", "\uff4d\uff41\uff59\uff41", "\uff2d\uff41\uff59\uff41", "ma\uff59a"],
    ],
)
def test_an_account_s_failed_logins_count_together_however_its_username_is_spelt(
    settings, spellings: list[str]
) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "login_account": "3/hour"}
    UserFactory.create(username="maya", password="right-horse-battery")

    codes = [
        Client(REMOTE_ADDR=f"203.0.113.{n}")
        .post("/admin/login/" if n % 2 else "/api/auth/token/", {"username": name, "password": "x"})
        .status_code
        for n, name in enumerate(spellings)
    ]

    assert codes[3:] == [429] * (len(spellings) - 3)


def test_failed_logins_with_a_number_for_a_username_are_counted(settings) -> None:
    # The API's username field takes a JSON number as its text, and checks that account.
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "login_account": "2/hour"}
    guess = {"username": 1234567, "password": "wrong"}

    codes = [
        APIClient(REMOTE_ADDR=f"203.0.113.{n}").post("/api/auth/token/", guess, format="json")
        for n in range(3)
    ]
    as_text = APIClient(REMOTE_ADDR="203.0.113.9").post(
        "/api/auth/token/", {**guess, "username": "1234567"}, format="json"
    )

    assert [response.status_code for response in codes] == [401, 401, 429]
    assert as_text.status_code == 429
