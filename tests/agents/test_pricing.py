import logging
import uuid
from decimal import Decimal

import pytest

from agents.pricing import model_cost_usd

PRICES = {
    "gpt-cheap": {"prompt": 0.15, "completion": 0.60},
    "gpt-dear": {"prompt": 2.50, "completion": 10.00},
}


def test_a_model_missing_from_the_price_table_is_priced_at_the_dearest_known_rate(
    settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.MODEL_PRICES_PER_MILLION = PRICES
    unlisted = f"gpt-unlisted-{uuid.uuid4().hex[:8]}"  # warned about once per process

    with caplog.at_level(logging.WARNING, logger="agents.pricing"):
        first = model_cost_usd(model=unlisted, prompt_tokens=1_000, completion_tokens=100)
        again = model_cost_usd(model=unlisted, prompt_tokens=1_000, completion_tokens=100)

    # 1,000 prompt tokens at $2.50/M and 100 completion tokens at $10/M.
    assert first == again == Decimal("0.003500")
    warnings = [r for r in caplog.records if r.getMessage() == "agents.model_unpriced"]
    assert len(warnings) == 1
    assert vars(warnings[0])["model"] == unlisted


def test_a_model_that_spent_no_tokens_costs_nothing_even_unpriced(settings) -> None:
    settings.MODEL_PRICES_PER_MILLION = PRICES

    assert model_cost_usd(model="offline-templates", prompt_tokens=0, completion_tokens=0) == 0


def test_cached_prompt_tokens_cost_the_prompt_rate_where_the_table_gives_them_none(
    settings,
) -> None:
    settings.MODEL_PRICES_PER_MILLION = PRICES | {
        "gpt-cached": {"prompt": 1.0, "cached_prompt": 0.25, "completion": 2.0}
    }

    cached = model_cost_usd(
        model="gpt-cached", prompt_tokens=4_000, completion_tokens=0, cached_prompt_tokens=2_000
    )
    uncached_rate = model_cost_usd(
        model="gpt-cheap", prompt_tokens=4_000, completion_tokens=0, cached_prompt_tokens=2_000
    )

    assert cached == Decimal("0.002500")  # 2,000 at $1/M and 2,000 at $0.25/M
    assert uncached_rate == Decimal("0.000600")  # all 4,000 at $0.15/M
