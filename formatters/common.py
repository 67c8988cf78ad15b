"""What both built-in formatters share: walking a conversation into chat-template messages."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from vidtt import Clip, FormatterError, Message, PromptFormatter, TextPart, VideoPart

# (clip, video number) -> the template parts standing for that video
VideoParts = Callable[[Clip, int], list[dict[str, Any]]]


def template_messages(
    conversation: list[Message], video_parts: VideoParts, images: list[Any]
) -> list[dict[str, Any]]:
    """Chat-template messages for one conversation; images found are appended to `images`."""
    messages = []
    videos = 0
    for message in conversation:
        parts: list[dict[str, Any]] = []
        for part in message.content:
            if isinstance(part, TextPart):
                parts.append({"type": "text", "text": part.text})
            elif isinstance(part, VideoPart):
                if not isinstance(part.video, Clip):
                    raise FormatterError("videos must be sampled into Clips before formatting")
                videos += 1
                parts.extend(video_parts(part.video, videos))
            else:
                parts.append({"type": "image"})
                images.append(part.image)
        messages.append({"role": message.role, "content": parts})
    return messages


def render(processor: Any, messages: list[dict[str, Any]], continue_final: bool) -> str:
    """The prompt text from the processor's own chat template."""
    if not getattr(processor, "chat_template", None):
        raise FormatterError(
            "the processor has no chat template: save one with the model "
            "(processor.chat_template) or pick a model that ships one"
        )
    return str(
        processor.apply_chat_template(
            messages,
            tokenize=False,
            add_generation_prompt=not continue_final,
            continue_final_message=continue_final,
        )
    )


def common_decline(processor: Any) -> str | None:
    if getattr(processor, "tokenizer", None) is None:
        return "the processor has no tokenizer"
    if not getattr(processor, "chat_template", None):
        return "the processor has no chat template"
    return None


class ChatFormatter(PromptFormatter):
    """Renders each conversation with the processor's chat template, then calls the processor
    once for the whole batch. Subclasses say what a video becomes."""

    def build_inputs(
        self, conversations: list[list[Message]], processor: Any, **options: Any
    ) -> Any:
        continue_final = bool(
            conversations and conversations[0] and conversations[0][-1].role == "assistant"
        )
        texts: list[str] = []
        images: list[Any] = []  # in prompt order: image parts and, here, expanded frames
        videos: list[Clip] = []
        parts = self.video_parts(images, videos, options)
        for conversation in conversations:
            messages = template_messages(conversation, parts, images)
            texts.append(render(processor, messages, continue_final))
        return self.call_processor(processor, texts, images, videos)

    needs: ClassVar[tuple[tuple[str, str], ...]] = ()  # (processor attribute, reason if absent)

    def decline_reason(self, model_config: Any, processor: Any) -> str | None:
        for attribute, reason in self.needs:
            if getattr(processor, attribute, None) in (None, ""):
                return reason
        return common_decline(processor)

    def video_parts(
        self, images: list[Any], videos: list[Clip], options: dict[str, Any]
    ) -> VideoParts:
        """A function returning a clip's template parts (after its timestamps, when asked) and
        recording its media."""

        def parts(clip: Clip, number: int) -> list[dict[str, Any]]:
            videos.append(clip)
            prefix = (
                [{"type": "text", "text": timestamps_text(clip, number)}]
                if options.get("timestamps")
                else []
            )
            return prefix + self.expand(clip, images)

        return parts

    @abstractmethod
    def expand(self, clip: Clip, images: list[Any]) -> list[dict[str, Any]]:
        """The template parts a video becomes; frames sent as images go into `images`."""

    @abstractmethod
    def call_processor(
        self, processor: Any, texts: list[str], images: list[Any], videos: list[Clip]
    ) -> Any:
        """Processor outputs for the rendered texts and the media in prompt order."""


def timestamps_text(clip: Clip, number: int) -> str:
    times = ", ".join(f"{t:.1f}" for t in clip.timestamps)
    return f"Video {number}, frames at {times} s: "
