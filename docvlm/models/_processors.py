"""Load a transformers processor from a local folder, robustly, for image-only use.

Several VLM processors (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, SmolVLM, ...) insist on a *video*
processor. Video processors need torchvision, so without it these processors fail to load, or
``AutoProcessor`` quietly falls back to returning just the tokenizer. docvlm only ever sends
images, so `load_processor` swaps in an *image-only* subclass of the stock processor: the
same class minus the video processor. The subclass is registered with ``AutoProcessor`` for the
model's config class (in every process that calls `load_processor`) and saves itself under
the stock class's name, so a folder it writes loads anywhere.

Importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from docvlm.errors import ModelError

__all__ = ["image_only_processor_class", "load_processor", "processor_is_complete"]

_PREFIX = "ImageOnly"
_LOCK = threading.Lock()
_VIDEO_HINT = "docvlm sends images only, so the video processor is dropped"


def processor_is_complete(processor: Any) -> bool:
    """Whether ``processor`` can turn images into model inputs (it has an image processor).

    A bare tokenizer (what ``AutoProcessor`` returns when the real processor failed to load, or for
    a text-only model) is not complete.
    """
    return getattr(processor, "image_processor", None) is not None and getattr(processor, "tokenizer", None) is not None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _saved_processor_class(folder: Path) -> str | None:
    """The processor class name a folder records (processor, image processor, then tokenizer config)."""
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        value = _read_json(folder / name).get("processor_class")
        if isinstance(value, str) and value:
            return value
    return None


def _is_vlm_folder(folder: Path) -> bool:
    """Whether a folder holds a vision model (so its processor must handle images)."""
    return (
        "vision_config" in _read_json(folder / "config.json")
        or "image_processor" in _read_json(folder / "processor_config.json")
        or (folder / "preprocessor_config.json").exists()
    )


def _needs_image_only(stock: Any) -> bool:
    return "video_processor" in stock.get_attributes()


def _make_image_only(stock: Any) -> Any:
    """Build the image-only subclass of a stock processor class that takes a video processor."""
    import transformers

    mixin: Any = transformers.ProcessorMixin  # Any: transformers' own annotations are partial
    stock_name: str = stock.__name__

    def to_dict(self: Any) -> dict[str, Any]:
        out: dict[str, Any] = stock.to_dict(self)
        out["processor_class"] = stock_name
        return out

    def save_pretrained(self: Any, save_directory: Any, *args: Any, **kwargs: Any) -> Any:
        result = stock.save_pretrained(self, save_directory, *args, **kwargs)
        config = Path(save_directory) / "tokenizer_config.json"  # the tokenizer records the processor too
        data = _read_json(config)
        if data.get("processor_class") == type(self).__name__:
            data["processor_class"] = stock_name
            config.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return result

    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__qualname__": _PREFIX + stock_name,
        "__doc__": f"``{stock_name}`` for images only: no video processor ({_VIDEO_HINT}).",
        "to_dict": to_dict,
        "save_pretrained": save_pretrained,
    }

    if stock_name == "SmolVLMProcessor":
        # SmolVLM's own __init__ demands num2words (used for video prompts only) and its
        # apply_chat_template reads video processor settings unconditionally.
        def smolvlm_init(
            self: Any,
            image_processor: Any = None,
            tokenizer: Any = None,
            image_seq_len: int = 169,
            chat_template: str | None = None,
            **kwargs: Any,
        ) -> None:
            self.fake_image_token = getattr(tokenizer, "fake_image_token", "<fake_token_around_image>")
            self.image_token = getattr(tokenizer, "image_token", "<image>")
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.end_of_utterance_token = getattr(tokenizer, "end_of_utterance_token", "<end_of_utterance>")
            self.global_image_token = getattr(tokenizer, "global_image_token", "<global-img>")
            self.image_seq_len = image_seq_len
            self.video_token = getattr(tokenizer, "video_token", "<video>")
            mixin.__init__(self, image_processor, tokenizer, chat_template=chat_template, **kwargs)

        def smolvlm_apply_chat_template(self: Any, conversation: Any, chat_template: Any = None, **kwargs: Any) -> Any:
            return mixin.apply_chat_template(self, conversation, chat_template, **kwargs)

        namespace["__init__"] = smolvlm_init
        namespace["apply_chat_template"] = smolvlm_apply_chat_template
    else:

        def init(
            self: Any, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None, **kwargs: Any
        ) -> None:
            stock.__init__(
                self, image_processor, tokenizer, video_processor=None, chat_template=chat_template, **kwargs
            )

        namespace["__init__"] = init

    return type(_PREFIX + stock_name, (stock,), namespace)


_TWINS: dict[Any, Any] = {}


def _twin(stock: Any) -> Any:
    """``stock`` itself, or its image-only twin when it takes a video processor (built once, under a lock)."""
    if not _needs_image_only(stock):
        return stock
    with _LOCK:
        cls = _TWINS.get(stock)
        if cls is None:
            cls = _TWINS[stock] = _make_image_only(stock)
            globals()[cls.__name__] = cls
    return cls


def image_only_processor_class(stock_name: str) -> Any:
    """The image-only twin of the transformers processor class ``stock_name``.

    For a processor that takes no video processor (LLaVA, Idefics3, PaliGemma, ...) this is the
    stock class itself. The twins live in this module's namespace, so they pickle by reference.

    Args:
        stock_name: a transformers processor class name, e.g. ``"Qwen2VLProcessor"``.

    Returns:
        The processor class.

    Raises:
        ModelError: if transformers has no processor class of that name.
    """
    stock = _resolve(stock_name)
    if stock is None:
        raise ModelError(
            f"transformers {_transformers_version()} has no processor class {stock_name!r}",
            hint="upgrade transformers, or check processor_class in the folder's processor_config.json",
        )
    return _twin(stock)


def _resolve(name: str) -> Any:
    """The transformers processor class called ``name`` (or named by an image-only twin), else ``None``."""
    from transformers.models.auto.processing_auto import processor_class_from_name

    if name.startswith(_PREFIX):
        name = name[len(_PREFIX) :]
    try:
        stock = processor_class_from_name(name)
        return stock if stock is not None and callable(getattr(stock, "get_attributes", None)) else None
    except ImportError:  # a placeholder class for a missing dependency raises on any attribute
        return None


def __getattr__(name: str) -> Any:
    """Rebuild an image-only twin on first access (so an unpickler finds it in a fresh process)."""
    if name.startswith(_PREFIX) and name.endswith("Processor"):
        return image_only_processor_class(name[len(_PREFIX) :])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _transformers_version() -> str:
    import transformers

    return str(transformers.__version__)


def _stock_class_for(folder: Path, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """The stock processor class of a folder and its config class (either may be ``None``)."""
    from transformers import AutoConfig
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING

    config_class: Any = None
    stock: Any = None
    if (folder / "config.json").exists():
        config_kwargs = {k: v for k, v in kwargs.items() if k in ("local_files_only", "trust_remote_code", "revision")}
        try:
            config_class = type(AutoConfig.from_pretrained(str(folder), **config_kwargs))
        except (OSError, ValueError, KeyError):
            config_class = None
    name = _saved_processor_class(folder)
    if name is not None:
        stock = _resolve(name)
    if stock is None and config_class is not None:
        try:
            stock = PROCESSOR_MAPPING[config_class]
        except (KeyError, ImportError):
            stock = None
    return stock, config_class


def load_processor(path: str | Path, **kwargs: Any) -> Any:
    """Load the processor of a local model folder, without needing torchvision.

    Processors that insist on a video processor (Qwen2/2.5/3-VL, SmolVLM, ...) are loaded as their
    image-only twin (`image_only_processor_class`), which is also registered with
    ``AutoProcessor`` for the folder's config class. Everything else goes through
    ``AutoProcessor``. A text-only model folder gives its tokenizer.

    Args:
        path: a folder written by ``save_pretrained``.
        **kwargs: passed on to ``from_pretrained`` (``local_files_only``, ``trust_remote_code``, ...).

    Returns:
        The processor (or, for a text-only model, the tokenizer).

    Raises:
        ModelError: the folder is missing, the processor cannot be loaded, or a vision model's
            folder yields no image processor.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ModelError(
            "no model folder here",
            source=str(folder),
            hint="pass a local folder written by save_pretrained (hub ids are not downloaded here)",
        )
    try:
        import transformers
    except ImportError as exc:  # e.g. a broken torchvision install makes transformers fail to import
        raise ModelError(
            f"transformers cannot be imported: {exc}",
            hint="a torchvision wheel that does not match torch breaks transformers: uninstall torchvision",
        ) from exc
    auto: Any = transformers.AutoProcessor  # Any: transformers' own annotations are partial
    kwargs.setdefault("local_files_only", True)
    stock, config_class = _stock_class_for(folder, kwargs)
    cls = _twin(stock) if stock is not None else None
    try:
        if cls is not None and cls is not stock:
            if config_class is not None:
                with _LOCK:
                    auto.register(config_class, cls, exist_ok=True)
            processor = cls.from_pretrained(str(folder), **kwargs)
        else:
            processor = auto.from_pretrained(str(folder), **kwargs)
    except Exception as exc:  # transformers raises OSError, ValueError, TypeError, ImportError, ...
        what = cls.__name__ if cls is not None else "AutoProcessor"
        raise ModelError(
            f"cannot load the processor ({what}): {type(exc).__name__}: {exc}",
            source=str(folder),
            hint="the folder needs the tokenizer and processor files that the processor's save_pretrained writes",
        ) from exc
    if _is_vlm_folder(folder) and not processor_is_complete(processor):
        raise ModelError(
            f"the processor loaded without an image processor (got {type(processor).__name__})",
            source=str(folder),
            hint="save the model's processor into the folder (processor.save_pretrained), not only its tokenizer",
        )
    return processor
