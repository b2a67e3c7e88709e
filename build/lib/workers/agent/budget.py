"""How much one agent run may spend: steps, tokens, wall time and money. Each limit that runs out is
its own outcome, so a job record says why the agent stopped."""

from __future__ import annotations

from dataclasses import dataclass

from workers.agent.llm import Usage


@dataclass(frozen=True)
class Budget:
    max_steps: int = 30
    max_tokens: int = 400_000  # prompt + completion, summed over the run
    max_seconds: float = 900.0  # wall time
    max_cost: float | None = None  # in the currency of the prices below; None: no cost limit
    price_per_1k_prompt: float = 0.0
    price_per_1k_completion: float = 0.0
    price_per_1k_cached: float | None = None  # prompt tokens served from the endpoint's cache; None: as prompt
    observation_window: int = 1  # at least the last N steps keep their tool output in full …
    compaction_block: int = 4  # … and older ones are shortened N at a time (see workers/agent/history.py)
    max_tokens_per_reply: int | None = None

    def cost(self, usage: Usage) -> float:
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        cached_price = self.price_per_1k_prompt if self.price_per_1k_cached is None else self.price_per_1k_cached
        return ((usage.prompt_tokens - cached) * self.price_per_1k_prompt + cached * cached_price
                + usage.completion_tokens * self.price_per_1k_completion) / 1000

    def before_step(self, elapsed_s: float) -> str | None:
        """The outcome that stops the run before the next model call, if any."""
        return "budget_time" if elapsed_s >= self.max_seconds else None

    def after_step(self, usage: Usage) -> str | None:
        """The outcome that stops the run after a step, if any."""
        if usage.total >= self.max_tokens:
            return "budget_tokens"
        if self.max_cost is not None and self.cost(usage) >= self.max_cost:
            return "budget_cost"
        return None
