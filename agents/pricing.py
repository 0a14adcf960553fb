"""What model calls cost, from the per-model price table in settings."""

from decimal import Decimal

from django.conf import settings

MILLION = Decimal(1_000_000)


def model_cost_usd(*, model: str, prompt_tokens: int, completion_tokens: int) -> Decimal:
    """Cost in US dollars; a model missing from the table (offline templates) costs nothing."""
    prices = settings.MODEL_PRICES_PER_MILLION.get(model)
    if prices is None:
        return Decimal(0)
    prompt = Decimal(str(prices["prompt"])) * prompt_tokens
    completion = Decimal(str(prices["completion"])) * completion_tokens
    return ((prompt + completion) / MILLION).quantize(Decimal("0.000001"))
