"""Chat messages that mix text and images: what every model backend receives."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, Union

from docvlm.errors import UsageError

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.types.image import PageImage

__all__ = ["ImageInput", "Message", "MessagesInput", "Role", "to_messages"]

Role = Literal["system", "user", "assistant"]
ImageInput: TypeAlias = Union["Image.Image", "PageImage"]
Part: TypeAlias = Union[str, "Image.Image", "PageImage"]


def _is_image(part: object) -> bool:
    from PIL import Image

    from docvlm.types.image import PageImage

    return isinstance(part, (Image.Image, PageImage))


@dataclass
class Message:
    """One chat message: a role and an ordered list of parts, each a string or an image.

    Images may be PIL images or [`PageImage`][docvlm.types.image.PageImage] renderings (which keep their frame,
    so tasks can map the model's boxes back to page space).
    """

    role: Role
    content: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.role not in ("system", "user", "assistant"):
            raise UsageError(f"unknown message role {self.role!r}", hint="use 'system', 'user' or 'assistant'")
        if isinstance(self.content, str) or _is_image(self.content):
            self.content = [self.content]
        for part in self.content:
            if not isinstance(part, str) and not _is_image(part):
                raise UsageError(
                    f"a message part must be text or an image, got {type(part).__name__}",
                    hint="pass str, PIL.Image.Image or docvlm.PageImage parts",
                )

    @property
    def text(self) -> str:
        """The text parts joined with newlines."""
        return "\n".join(p for p in self.content if isinstance(p, str))

    @property
    def images(self) -> list[Image.Image]:
        """The image parts as PIL images, in order."""
        from docvlm.types.image import PageImage

        return [p.image if isinstance(p, PageImage) else p for p in self.content if not isinstance(p, str)]

    @property
    def page_images(self) -> list[PageImage | None]:
        """For each image part, its [`PageImage`][docvlm.types.image.PageImage] (with the frame) or ``None`` for a bare PIL image."""
        from docvlm.types.image import PageImage

        return [p if isinstance(p, PageImage) else None for p in self.content if not isinstance(p, str)]


MessagesInput: TypeAlias = Union[str, Message, Sequence[Union[Message, Mapping[str, Any], Part]]]  # noqa: UP007


def to_messages(prompt: MessagesInput) -> list[Message]:
    """Normalize what users pass as a prompt into a list of [`Message`][docvlm.models.messages.Message].

    - a string: one user message;
    - a list of strings and images: one user message with those parts, in order;
    - a list of [`Message`][docvlm.models.messages.Message] or ``{"role": ..., "content": ...}`` dicts: those messages.
    """
    if isinstance(prompt, str):
        return [Message("user", [prompt])]
    if isinstance(prompt, Message):
        return [prompt]
    items = list(prompt)
    if not items:
        raise UsageError("a prompt needs at least one message")
    if all(isinstance(p, str) or _is_image(p) for p in items):
        return [Message("user", items)]
    out: list[Message] = []
    for item in items:
        if isinstance(item, Message):
            out.append(item)
        elif isinstance(item, Mapping):
            content = item.get("content", [])
            out.append(Message(item.get("role", "user"), list(content) if isinstance(content, list) else [content]))
        else:
            raise UsageError(
                f"cannot mix {type(item).__name__} parts with messages",
                hint="pass either parts (str / images) for one user message, or a list of messages",
            )
    return out
