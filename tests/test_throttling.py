from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from beemanhoney.common.throttling import ReadThrottle


def _request(address: str = "203.0.113.20"):
    request = APIRequestFactory().get("/api/products/", REMOTE_ADDR=address)
    request.user = AnonymousUser()
    return request


def _throttle_at(now: float) -> ReadThrottle:
    throttle = ReadThrottle()
    throttle.timer = lambda: now
    return throttle


def test_the_window_slides_and_the_wait_is_until_the_oldest_request_leaves_it(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "read": "2/min"}
    request = _request()

    allowed = [_throttle_at(now).allow_request(request, None) for now in (1000.0, 1010.0)]
    refused = _throttle_at(1030.0)
    refused_allowed = refused.allow_request(request, None)
    after_the_oldest_left = _throttle_at(1060.5).allow_request(request, None)

    assert allowed == [True, True]
    assert refused_allowed is False
    assert refused.wait() == pytest.approx(30.0)
    assert after_the_oldest_left is True
    assert _throttle_at(1061.0).allow_request(request, None) is False  # 1010 and 1060.5 left


def test_clients_are_counted_apart(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "read": "1/min"}

    first = ReadThrottle().allow_request(_request("203.0.113.21"), None)
    second = ReadThrottle().allow_request(_request("203.0.113.22"), None)
    again = ReadThrottle().allow_request(_request("203.0.113.21"), None)

    assert (first, second, again) == (True, True, False)


def test_requests_arriving_together_are_each_counted(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "read": "10/min"}
    request = _request()
    start = Barrier(24)

    def attempt(_: int) -> bool:
        start.wait()
        return ReadThrottle().allow_request(request, None)

    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(attempt, range(24)))

    assert answers.count(True) == 10


def test_counts_drf_left_in_the_cache_before_a_deploy_do_not_get_in_the_way(settings) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "read": "5/min"}
    request = _request()
    throttle = ReadThrottle()
    cache.set(throttle.get_cache_key(request, APIView()), [1000.0, 999.0], 60)

    assert throttle.allow_request(request, None) is True


@pytest.mark.django_db
def test_with_redis_down_requests_are_let_through_and_the_outage_logged(settings, caplog) -> None:
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "read": "1/min"}
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    client = APIClient()

    answers = [client.get("/api/categories/").status_code for _ in range(3)]

    assert answers == [200, 200, 200]
    assert [r.message for r in caplog.records].count("throttle.redis_unavailable") <= 1
    assert "throttle.redis_unavailable" in [r.message for r in caplog.records]
