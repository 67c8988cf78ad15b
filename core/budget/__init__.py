"""The visual-token budget: how many frames (and what frame size) fit a model's tokens."""

from vidtt._lazy import exports

_SCHEMA, _COUNTS, _PLAN = "vidtt.budget.schema", "vidtt.budget.counts", "vidtt.budget.planner"
__getattr__ = exports(
    __name__,
    {
        "Budget": _SCHEMA,
        "BudgetPlan": _SCHEMA,
        "plan": _PLAN,
        "visual_tokens": _COUNTS,
        "text_tokens": _COUNTS,
        "clear_cache": _COUNTS,
    },
)
__all__ = ["Budget", "BudgetPlan", "clear_cache", "plan", "text_tokens", "visual_tokens"]
