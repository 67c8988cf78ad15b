"""The pipeline: settings -> media -> formatter -> engine -> Answer."""

from vidtt._lazy import exports

__getattr__ = exports(
    __name__,
    {
        "Pipeline": "vidtt.pipeline.core",
        "Prepared": "vidtt.pipeline.core",
        "batches": "vidtt.pipeline.core",
        "choose_formatter": "vidtt.plugins.choose",
        "parse_messages": "vidtt.pipeline.messages",
    },
)
__all__ = ["Pipeline", "Prepared", "batches", "choose_formatter", "parse_messages"]
