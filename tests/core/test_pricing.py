"""Cost from the operator's price table and the usage the endpoint reported."""

import pytest

from core.config import ModelPrice
from core.pricing import cost

PRICES = {"qwen3-coder-plus": ModelPrice(input=1.0, cached_input=0.1, output=5.0),
          "plain": ModelPrice(input=2.0, output=2.0)}


def test_cached_prompt_tokens_cost_the_cached_price_and_the_rest_the_input_price():
    assert cost(PRICES, "qwen3-coder-plus", 1_000_000, 400_000, 100_000) == pytest.approx(0.6 + 0.04 + 0.5)


def test_without_a_cached_price_cached_tokens_cost_the_input_price():
    assert cost(PRICES, "plain", 500_000, 500_000, 0) == 1.0


def test_a_model_without_a_price_has_no_cost():
    assert cost(PRICES, "unknown-model", 10, 0, 10) is None
