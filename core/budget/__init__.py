"""The visual-token budget: how many frames (and what frame size) fit a model's tokens."""

from vidtt._lazy import exports

_PLAN = "vidtt.budget.plan"
__getattr__ = exports(
    __name__,
    {
        "Budget": _PLAN,
        "BudgetPlan": _PLAN,
        "plan": _PLAN,
        "visual_tokens": _PLAN,
        "text_tokens": _PLAN,
        "clear_cache": _PLAN,
    },
)
__all__ = ["Budget", "BudgetPlan", "clear_cache", "plan", "text_tokens", "visual_tokens"]
