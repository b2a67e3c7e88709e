"""What model usage costs: the operator's price table (per million tokens) applied to the token counts
the endpoint reported."""

from __future__ import annotations

from core.config import ModelPrice

PER = 1_000_000


def cost(prices: dict[str, ModelPrice], model: str, prompt_tokens: int, cached_tokens: int,
         completion_tokens: int) -> float | None:
    """The cost of one request, or None when the model has no price. Cached tokens are part of the
    prompt tokens (as OpenAI-compatible endpoints report them) and cost the cached-input price."""
    price = prices.get(model)
    if price is None:
        return None
    cached = max(0, min(cached_tokens, prompt_tokens))
    cached_price = price.input if price.cached_input is None else price.cached_input
    return ((prompt_tokens - cached) * price.input + cached * cached_price
            + completion_tokens * price.output) / PER
