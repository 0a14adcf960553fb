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


def model_cost_usd(
    *, model: str, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int = 0
) -> Decimal:
    """Cost in US dollars of ``model``'s tokens at its rates in ``MODEL_PRICES_PER_MILLION``.

    ``cached_prompt_tokens``: those of the ``prompt_tokens`` the provider read from its prompt
    cache (a turn's later calls repeat its first's prefix), at the model's ``cached_prompt``
    rate where the table gives one, else at its prompt rate.

    A model missing from the table is priced at the dearest known rates (each kind at its
    highest), and a warning is logged once per model name per process: pricing it at zero
    would silently switch both budgets off, while overcharging at worst hands a conversation to
    staff early. Tokens never spent cost nothing, so the offline templates, which spend none,
    stay free without being listed.
    """
    if not prompt_tokens and not completion_tokens:
        return Decimal(0)
    table = settings.MODEL_PRICES_PER_MILLION
    prices = table.get(model)
    if prices is None:
        _warn_unpriced(model)
        prices = {
            kind: max((_rate(rates, kind) for rates in table.values()), default=0)
            for kind in ("prompt", "cached_prompt", "completion")
        }
    cached = min(cached_prompt_tokens, prompt_tokens)
    prompt = Decimal(str(prices["prompt"])) * (prompt_tokens - cached)
    prompt += Decimal(str(_rate(prices, "cached_prompt"))) * cached
    completion = Decimal(str(prices["completion"])) * completion_tokens
    return ((prompt + completion) / MILLION).quantize(Decimal("0.000001"))


def _rate(prices: dict[str, float], kind: str) -> float:
    """A model's rate for ``kind`` of token; a cached prompt token at the prompt rate when the
    table gives no rate of its own."""
    return prices.get(kind, prices["prompt"]) if kind == "cached_prompt" else prices[kind]


@cache
def _warn_unpriced(model: str) -> None:
    logger.warning(
        "agents.model_unpriced",
        extra={"model": model, "hint": "add it to MODEL_PRICES_JSON; priced at the dearest rate"},
    )
