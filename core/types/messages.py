"""Conversations: messages and their text, video and image parts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TextPart(BaseModel):
    type: Literal["text"] = "text"
    text: str


class VideoPart(BaseModel):
    """A video in a message: any source `VideoSource.of` accepts, or a `Clip` already sampled."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    type: Literal["video"] = "video"
    video: Any

    @model_validator(mode="before")
    @classmethod
    def _accept_aliases(cls, data: Any) -> Any:
        return _alias_to(data, "video")


class ImagePart(BaseModel):
    """An image in a message: a PIL image, an array, or a path/URL."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    type: Literal["image"] = "image"
    image: Any

    @model_validator(mode="before")
    @classmethod
    def _accept_aliases(cls, data: Any) -> Any:
        return _alias_to(data, "image")


def _alias_to(data: Any, key: str) -> Any:
    """Accept transformers' chat-template spelling (`path`/`url`) for the media field."""
    if isinstance(data, dict) and key not in data:
        for alias in ("path", "url"):
            if alias in data:
                data = {**data, key: data[alias]}
                data.pop(alias)
                break
    return data


ContentPart = Annotated[TextPart | VideoPart | ImagePart, Field(discriminator="type")]


class Message(BaseModel):
    """One turn of a conversation; a plain string content becomes one text part."""

    role: Literal["system", "user", "assistant"]
    content: list[ContentPart]

    @model_validator(mode="before")
    @classmethod
    def _text_content(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("content"), str):
            data = {**data, "content": [{"type": "text", "text": data["content"]}]}
        return data
