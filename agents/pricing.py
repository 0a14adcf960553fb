"""What model calls cost, from the per-model price table in settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from django.conf import settings

logger = logging.getLogger(__name__)

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Usage:
    """Tokens and model calls spent, and what they cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_calls: int = 0
    cost_usd: Decimal = Decimal(0)

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens - other.prompt_tokens,
            completion_tokens=self.completion_tokens - other.completion_tokens,
            model_calls=self.model_calls - other.model_calls,
            cost_usd=self.cost_usd - other.cost_usd,
        )


def model_cost_usd(*, model: str, prompt_tokens: int, completion_tokens: int) -> Decimal:
    """Cost in US dollars of ``model``'s tokens at its rate in ``MODEL_PRICES_PER_MILLION``.

    A model missing from the table is priced at the dearest known rates (prompt and completion
    each at their highest), and a warning is logged once per model name per process: pricing it
    at zero would silently switch both budgets off, while overcharging at worst hands a
    conversation to staff early. Tokens never spent cost nothing, so the offline templates,
    which spend none, stay free without being listed.
    """
    if not prompt_tokens and not completion_tokens:
        return Decimal(0)
    table = settings.MODEL_PRICES_PER_MILLION
    prices = table.get(model)
    if prices is None:
        _warn_unpriced(model)
        prices = {
            kind: max((rates[kind] for rates in table.values()), default=0)
            for kind in ("prompt", "completion")
        }
    prompt = Decimal(str(prices["prompt"])) * prompt_tokens
    completion = Decimal(str(prices["completion"])) * completion_tokens
    return ((prompt + completion) / MILLION).quantize(Decimal("0.000001"))


@cache
def _warn_unpriced(model: str) -> None:
    logger.warning(
        "agents.model_unpriced",
        extra={"model": model, "hint": "add it to MODEL_PRICES_JSON; priced at the dearest rate"},
    )
