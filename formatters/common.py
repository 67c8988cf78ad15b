"""What both built-in formatters share: rendering each conversation with the processor's chat
template, calling the processor the way transformers' own `apply_chat_template(tokenize=True)`
does, and checking that every video and image reached the model inputs."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from vidtt.plugin_api import (
    Clip,
    FormatterError,
    ImagePart,
    Message,
    PromptFormatter,
    TextPart,
    VideoPart,
    visual_token_ids,
)

# (clip, video number) -> the template parts standing for that video
VideoParts = Callable[[Clip, int], list[dict[str, Any]]]


@dataclass
class Row:
    """One conversation of a batch, ready for the processor."""

    text: str
    images: list[Any] = field(default_factory=list)  # in prompt order (expanded frames too)
    videos: list[Clip] = field(default_factory=list)
    media: list[str] = field(default_factory=list)  # "video 1", "image 1", ... in prompt order
    places: list[tuple[int, int]] = field(default_factory=list)  # (message, part) of each media


def template_messages(
    conversation: list[Message], video_parts: VideoParts, row: Row
) -> list[dict[str, Any]]:
    """Chat-template messages for one conversation; its media are recorded in `row`."""
    messages: list[dict[str, Any]] = []
    videos = images = 0
    for message in conversation:
        parts: list[dict[str, Any]] = []
        for part in message.content:
            if isinstance(part, TextPart):
                parts.append({"type": "text", "text": part.text})
            elif isinstance(part, VideoPart):
                if not isinstance(part.video, Clip):
                    raise FormatterError("videos must be sampled into Clips before formatting")
                videos += 1
                new = video_parts(part.video, videos)
                first = next(i for i, p in enumerate(new) if p["type"] != "text")
                row.media.append(f"video {videos}")
                row.places.append((len(messages), len(parts) + first))
                parts.extend(new)
            elif isinstance(part, ImagePart):
                images += 1
                row.media.append(f"image {images}")
                row.places.append((len(messages), len(parts)))
                parts.append({"type": "image"})
                row.images.append(part.image)
        messages.append({"role": message.role, "content": parts})
    return messages


def render(processor: Any, messages: list[dict[str, Any]]) -> str:
    """The prompt text from the processor's own chat template: a generation prompt, or the
    final assistant message continued when the conversation ends with one."""
    if not getattr(processor, "chat_template", None):
        raise FormatterError(
            "the processor has no chat template: save one with the model "
            "(processor.chat_template) or pick a model that ships one"
        )
    continue_final = bool(messages) and messages[-1]["role"] == "assistant"
    return str(
        processor.apply_chat_template(
            messages,
            tokenize=False,
            add_generation_prompt=not continue_final,
            continue_final_message=continue_final,
        )
    )


def check_template_keeps_media(
    processor: Any, messages: list[dict[str, Any]], row: Row, number: int
) -> None:
    """Raise when the chat template writes nothing for a media part (it would be dropped)."""
    for name, (m, p) in zip(row.media, row.places):
        trimmed = [dict(x, content=list(x["content"])) for x in messages]
        kind = trimmed[m]["content"].pop(p)["type"]
        if render(processor, trimmed) == row.text:
            raise FormatterError(
                f"conversation {number}: the chat template writes nothing for {name} (it does "
                f"not handle {kind} parts), so it would never reach the model; use a model "
                "whose template does, or pick the other formatter"
            )


def common_decline(processor: Any) -> str | None:
    if getattr(processor, "tokenizer", None) is None:
        return "the processor has no tokenizer"
    if not getattr(processor, "chat_template", None):
        return (
            "the processor has no chat template (models such as InstructBLIP-Video take a "
            "plain prompt; vidtt does not support those)"
        )
    return None


def adds_bos_again(processor: Any, texts: list[str]) -> bool:
    """Whether the template already wrote BOS (the tokenizer must not add it a second time)."""
    bos = getattr(processor.tokenizer, "bos_token", None)
    return isinstance(bos, str) and bool(bos) and all(t.startswith(bos) for t in texts)


def frames_of(clip: Clip) -> Any:
    """The clip's frames as its uint8 array (N, H, W, 3): no PIL images are made, and the
    processors' outputs are the same as for images (the conformance tests check it)."""
    return clip.array


def check_inputs_have_media(processor: Any, rows: list[Row], inputs: Any) -> None:
    """Raise when a video or image of some row did not reach the model inputs."""
    pixels = [k for k in inputs if "pixel" in k and getattr(inputs[k], "numel", lambda: 1)()]
    visual = visual_token_ids(processor)
    for number, row in enumerate(rows, 1):
        if not row.media:
            continue
        if not pixels:
            raise FormatterError(
                f"conversation {number}: {row.media[0]} did not reach the model: the processor "
                f"returned no pixel tensors ({type(processor).__name__} ignored the media it was "
                "given); pick another formatter or model"
            )
        if visual and not any(bool((inputs["input_ids"][number - 1] == i).any()) for i in visual):
            names = ", ".join(sorted(processor.tokenizer.convert_ids_to_tokens(sorted(visual))))
            raise FormatterError(
                f"conversation {number}: {row.media[0]} did not reach the model: the prompt has "
                f"no visual tokens ({names}) after processing"
            )


class ChatFormatter(PromptFormatter):
    """Renders each conversation with the processor's chat template, then calls the processor
    once for the whole batch, as transformers' `apply_chat_template(tokenize=True)` does.
    Subclasses say what a video becomes."""

    needs: ClassVar[tuple[tuple[str, str], ...]] = ()  # (processor attribute, reason if absent)

    def build_inputs(
        self, conversations: list[list[Message]], processor: Any, **options: Any
    ) -> Any:
        rows = [
            self.row(conversation, processor, options, number)
            for number, conversation in enumerate(conversations, 1)
        ]
        inputs = self.call_processor(processor, rows)
        check_inputs_have_media(processor, rows, inputs)
        return inputs

    def row(
        self, conversation: list[Message], processor: Any, options: dict[str, Any], number: int
    ) -> Row:
        """Render one conversation (a generation prompt or a continued final message)."""
        row = Row(text="")
        messages = template_messages(conversation, self.video_parts(row, options), row)
        row.text = render(processor, messages)
        check_template_keeps_media(processor, messages, row, number)
        return row

    def decline_reason(self, model_config: Any, processor: Any) -> str | None:
        for attribute, reason in self.needs:
            if getattr(processor, attribute, None) in (None, ""):
                return reason
        return common_decline(processor)

    def video_parts(self, row: Row, options: dict[str, Any]) -> VideoParts:
        """A function returning a clip's template parts (after its timestamps, when asked;
        before its transcript, when it has one) and recording its media in `row`."""

        def parts(clip: Clip, number: int) -> list[dict[str, Any]]:
            prefix = (
                [{"type": "text", "text": timestamps_text(clip, number)}]
                if options.get("timestamps")
                else []
            )
            heard = clip.transcript
            said = [{"type": "text", "text": heard.prompt(number)}] if heard is not None else []
            return prefix + self.expand(clip, row) + said

        return parts

    @abstractmethod
    def expand(self, clip: Clip, row: Row) -> list[dict[str, Any]]:
        """The template parts a video becomes; its media go into `row`."""

    def processor_kwargs(self, processor: Any, rows: list[Row]) -> dict[str, Any]:
        """Keywords beyond text and images (videos and their metadata, for instance)."""
        return {}

    def call_processor(self, processor: Any, rows: list[Row]) -> Any:
        """Processor outputs for the rows, media nested per row as transformers passes them."""
        texts = [row.text for row in rows]
        kwargs = self.processor_kwargs(processor, rows)
        if any(row.images for row in rows):
            kwargs["images"] = [row.images for row in rows]
        if adds_bos_again(processor, texts):
            kwargs["add_special_tokens"] = False
        try:
            return processor(text=texts, padding=True, return_tensors="pt", **kwargs)
        except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as exc:
            if "stack expects each tensor to be equal size" in str(exc):
                counts = [len(c) for row in rows for c in row.videos]
                raise FormatterError(
                    f"{type(processor).__name__} cannot batch videos with different frame "
                    f"counts ({', '.join(map(str, counts))}): sample the same number of frames "
                    "from each video (num_frames), or send them in separate requests"
                ) from exc
            raise FormatterError(
                f"{type(processor).__name__} refused the prompt: {str(exc).splitlines()[0]}"
            ) from exc


def timestamps_text(clip: Clip, number: int) -> str:
    """When each frame was taken; with shots, labelled by shot ("shot 3, 0:41-1:05")."""
    shots = getattr(clip, "shots", None) or []
    if not any(shot.frames for shot in shots):
        times = ", ".join(f"{t:.1f}" for t in clip.timestamps)
        return f"Video {number}, frames at {times} s: "
    parts = [
        f"{shot.label(n)}: frames at "
        + ", ".join(f"{clip.timestamps[k]:.1f}" for k in shot.frames)
        + " s"
        for n, shot in enumerate(shots, 1)
        if shot.frames
    ]
    return f"Video {number}, {'; '.join(parts)}: "
