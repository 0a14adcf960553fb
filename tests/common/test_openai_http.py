import httpx2
import pytest

from beemanhoney.common.openai_http import retry_after_capped


@pytest.mark.parametrize(
    ("headers", "capped"),
    [
        ({"retry-after": "120"}, {"retry-after": "2"}),
        ({"retry-after": "1.5"}, {"retry-after": "1.5"}),
        ({"retry-after-ms": "90000"}, {"retry-after-ms": "2000"}),
        ({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, {"retry-after": "2"}),
        ({}, {}),
    ],
)
def test_a_retry_after_longer_than_the_setting_is_cut_to_it(
    settings, headers: dict[str, str], capped: dict[str, str]
) -> None:
    settings.OPENAI_RETRY_AFTER_MAX_SECONDS = 2.0
    response = httpx2.Response(429, headers=headers)

    retry_after_capped(response)

    assert {name: response.headers[name] for name in headers} == capped
