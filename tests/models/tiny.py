"""Tiny random-weight models of real VLM architectures, built offline for plumbing tests.

``build_tiny(family, folder)`` writes a ``save_pretrained`` folder (model + processor) that loads
with :func:`docvlm.models._processors.load_processor` and ``AutoModelForImageTextToText`` (or
``AutoModelForCausalLM`` for the text-only ``llama``), exactly like a checkpoint from a hub, with:

* a byte-level BPE tokenizer trained here on a short English + JSON + digits corpus (so JSON
  outputs are tokenizable), plus each family's special tokens and a chat template like the real
  one (PaliGemma and Florence-2 take raw prompts and have none);
* a model of a few hundred thousand parameters: hidden size 32-64, 1-2 layers, a tiny vision
  tower whose input is capped so that one image becomes 4-16 image tokens.

Nothing here touches a model hub. Building one family takes about a second.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["FAMILIES", "IMAGE_FAMILIES", "build_tiny", "image_tokens"]

#: Every family :func:`build_tiny` knows; all but ``llama`` take images.
FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "idefics3", "smolvlm", "llava", "paligemma", "florence2", "llama")
IMAGE_FAMILIES = FAMILIES[:-1]

_VOCAB = 512  # trained BPE tokens, before each family's special tokens

# -------------------------------------------------------------------------------------------------
# chat templates: shortened versions of the real ones (same markers, no default system prompt)
# -------------------------------------------------------------------------------------------------

_CONTENT = (
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part %}{{ IMAGE }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
)

_QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    + _CONTENT.replace("{{ IMAGE }}", "<|vision_start|><|image_pad|><|vision_end|>")
    + "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_IDEFICS_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'] is not string and message['content'][0]['type'] == 'image' %}:{% else %}: {% endif %}"
    + _CONTENT.replace("{{ IMAGE }}", "<image>")
    + "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)

_LLAVA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ message['role'] | upper }}: "
    + _CONTENT.replace("{{ IMAGE }}", "<image>\n")
    + "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %} "
    "{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

_LLAMA_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# -------------------------------------------------------------------------------------------------
# tokenizer
# -------------------------------------------------------------------------------------------------


def _transformers() -> Any:
    """transformers, typed loosely (its own annotations are partial), imported on first use."""
    import transformers

    return transformers


def _corpus() -> list[str]:
    rng = random.Random(0)
    words = ["a", "b", "title", "table", "text", "figure", "header", "footer", "page", "total"]
    lines = [
        "The quick brown fox jumps over the lazy dog. What is the text in the image? Describe the page.",
        "Find every box on the page and answer in JSON. Locate the table, the title and the figure.",
        "User: Assistant: system user assistant. 0 1 2 3 4 5 6 7 8 9 10 100 1000",
    ]
    for _ in range(150):
        box = {
            "x0": rng.randint(0, 1000),
            "y0": rng.randint(0, 1000),
            "x1": rng.randint(0, 1000),
            "y1": rng.randint(0, 1000),
            "label": rng.choice(words),
        }
        lines.append(json.dumps(box, separators=(",", ":")))
        lines.append(json.dumps([box, {**box, "score": round(rng.random(), 3)}]))
    return lines


def _tokenizer(
    specials: list[str], *, bos: str | None, eos: str, pad: str, unk: str | None = None, **extra: Any
) -> Any:
    """A byte-level BPE over :func:`_corpus` with ``specials`` added as special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    PreTrainedTokenizerFast = _transformers().PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB,
        special_tokens=[t for t in dict.fromkeys([pad, eos, *([bos] if bos else []), *([unk] if unk else [])])],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk, **extra
    )
    fast.add_special_tokens({"additional_special_tokens": specials})
    return fast


# -------------------------------------------------------------------------------------------------
# families
# -------------------------------------------------------------------------------------------------

_QWEN_SPECIALS = ["<|im_start|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
#: Qwen image processors resize to multiples of patch * merge pixels within this many pixels.
_QWEN_PIXELS = 4


def _text(hidden: int = 32, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 1024,
    }
    base.update(kw)
    return base


def _qwen(family: str) -> tuple[Any, Any]:
    tf = _transformers()

    from docvlm.models._processors import image_only_processor_class

    tok = _tokenizer(_QWEN_SPECIALS, bos=None, eos="<|im_end|>", pad="<|endoftext|>")
    ids = {
        "image_token_id": tok.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tok.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start_token_id": tok.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tok.convert_tokens_to_ids("<|vision_end|>"),
    }
    special = {
        "vocab_size": len(tok), "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id, "bos_token_id": None,
    }  # fmt: skip
    # mrope_section sums to head_dim / 2 = (32 / 2) / 2
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}
    patch = 16 if family == "qwen3_vl" else 14
    if family == "qwen2_vl":
        vision: dict[str, Any] = {"depth": 1, "embed_dim": 32, "hidden_size": 32, "num_heads": 2, "mlp_ratio": 2}
        config: Any = tf.Qwen2VLConfig(text_config=_text(rope_parameters=rope, **special), vision_config=vision, **ids)
        model_cls: Any = tf.Qwen2VLForConditionalGeneration
    elif family == "qwen2_5_vl":
        vision = {
            "depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 32,
            "window_size": 56, "fullatt_block_indexes": [0],
        }  # fmt: skip
        config = tf.Qwen2_5_VLConfig(text_config=_text(rope_parameters=rope, **special), vision_config=vision, **ids)
        model_cls = tf.Qwen2_5_VLForConditionalGeneration
    else:
        vision = {
            "depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 32,
            "patch_size": patch, "num_position_embeddings": 64, "deepstack_visual_indexes": [0],
        }  # fmt: skip
        rope3 = {**rope, "mrope_interleaved": True}
        config = tf.Qwen3VLConfig(
            text_config=_text(head_dim=16, rope_parameters=rope3, **special), vision_config=vision, **ids
        )
        model_cls = tf.Qwen3VLForConditionalGeneration
    config.tie_word_embeddings = True
    side = patch * 2  # patch * spatial_merge_size
    image_processor = tf.Qwen2VLImageProcessorPil(
        patch_size=patch, merge_size=2, temporal_patch_size=2,
        size={"shortest_edge": side * side, "longest_edge": _QWEN_PIXELS * side * side},
    )  # fmt: skip
    stock = {"qwen2_vl": "Qwen2VLProcessor", "qwen2_5_vl": "Qwen2_5_VLProcessor", "qwen3_vl": "Qwen3VLProcessor"}
    processor = image_only_processor_class(stock[family])(
        image_processor=image_processor, tokenizer=tok, chat_template=_QWEN_TEMPLATE
    )
    return model_cls(config), processor


def _idefics(family: str) -> tuple[Any, Any]:
    tf = _transformers()

    from docvlm.models._processors import image_only_processor_class

    specials = ["<|im_start|>", "<fake_token_around_image>", "<image>", "<global-img>", "<end_of_utterance>"]
    specials += [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    tok = _tokenizer(specials, bos="<|begin_of_text|>", eos="<end_of_utterance>", pad="<|endoftext|>")
    image_size, patch = 32, 8
    seq_len = (image_size // patch) ** 2 // 4  # scale_factor 2 merges 2x2 patches: 4 tokens
    vision = {
        "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
        "image_size": image_size, "patch_size": patch,
    }  # fmt: skip
    text = _text(
        vocab_size=len(tok), eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id
    )
    improc_kw = {
        "do_image_splitting": False, "size": {"longest_edge": image_size},
        "max_image_size": {"longest_edge": image_size},
    }  # fmt: skip
    image_token_id = tok.convert_tokens_to_ids("<image>")
    template = _IDEFICS_TEMPLATE
    if family == "smolvlm":
        config: Any = tf.SmolVLMConfig(vision_config=vision, text_config=text, image_token_id=image_token_id)
        model: Any = tf.SmolVLMForConditionalGeneration(config)
        image_processor: Any = tf.SmolVLMImageProcessorPil(**improc_kw)
        template = "<|im_start|>" + template
        cls = image_only_processor_class("SmolVLMProcessor")
    else:
        config = tf.Idefics3Config(vision_config=vision, text_config=text, image_token_id=image_token_id)
        model = tf.Idefics3ForConditionalGeneration(config)
        image_processor = tf.Idefics3ImageProcessorPil(**improc_kw)
        template = "{{ bos_token }}" + template
        cls = image_only_processor_class("Idefics3Processor")
    processor = cls(image_processor=image_processor, tokenizer=tok, image_seq_len=seq_len, chat_template=template)
    return model, processor


def _llava(family: str) -> tuple[Any, Any]:
    tf = _transformers()

    tok = _tokenizer(["<image>"], bos="<s>", eos="</s>", pad="<pad>", unk="<unk>")
    image_size, patch = 32, 8
    vision = tf.CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        image_size=image_size, patch_size=patch, projection_dim=32,
    )  # fmt: skip
    text = tf.LlamaConfig(
        **_text(), vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    seq_len = (image_size // patch) ** 2  # the CLS token is dropped by the "default" strategy
    config = tf.LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_seq_length=seq_len, vision_feature_select_strategy="default", vision_feature_layer=-1,
    )  # fmt: skip
    image_processor = tf.CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    processor = tf.LlavaProcessor(
        image_processor=image_processor, tokenizer=tok, patch_size=patch, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=_LLAVA_TEMPLATE,
    )  # fmt: skip
    return tf.LlavaForConditionalGeneration(config), processor


def _paligemma(family: str) -> tuple[Any, Any]:
    tf = _transformers()

    tok = _tokenizer([], bos="<bos>", eos="<eos>", pad="<pad>", unk="<unk>")
    image_size, patch = 32, 8
    seq_len = (image_size // patch) ** 2
    image_processor = tf.SiglipImageProcessorPil(size={"height": image_size, "width": image_size})
    image_processor.image_seq_length = seq_len
    processor = tf.PaliGemmaProcessor(image_processor=image_processor, tokenizer=tok)  # adds <image>, <loc>, <seg>
    vision = tf.SiglipVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        image_size=image_size, patch_size=patch, projection_dim=32,
    )  # fmt: skip
    text = tf.GemmaConfig(
        **_text(), head_dim=16, vocab_size=len(tok), bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    config = tf.PaliGemmaConfig(
        vision_config=vision, text_config=text, image_token_index=processor.image_token_id,
        vocab_size=len(tok), projection_dim=32, hidden_size=32,
    )  # fmt: skip
    return tf.PaliGemmaForConditionalGeneration(config), processor


def _florence2(family: str) -> tuple[Any, Any]:
    tf = _transformers()

    locs = [f"<loc_{i}>" for i in range(1000)]
    tok = _tokenizer(
        ["<od>", "</od>", "<ocr>", "</ocr>", "<poly>", "</poly>", "<sep>"], bos="<s>", eos="</s>", pad="<pad>",
        unk="<unk>", extra_special_tokens={"image_token": "<image>"},
    )  # fmt: skip
    tok.add_tokens(locs)  # the real tokenizer has these 1,000 location tokens as plain added tokens
    image_size = 64
    vision = tf.Florence2VisionConfig(
        depths=[1, 1], patch_size=[7, 3], patch_stride=[4, 2], patch_padding=[3, 1], patch_prenorm=[False, True],
        embed_dim=[16, 32], num_heads=[1, 2], num_groups=[1, 2], window_size=4, projection_dim=32,
        max_position_embeddings=16, drop_path_rate=0.0,
    )  # fmt: skip
    text = tf.BartConfig(
        vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        decoder_start_token_id=tok.eos_token_id, forced_bos_token_id=None, forced_eos_token_id=None,
    )  # fmt: skip
    config = tf.Florence2Config(text_config=text, vision_config=vision, image_token_id=tok.image_token_id)
    seq_len = (image_size // 8) ** 2 + 1  # stride 4 * 2, plus one pooled token
    image_processor = tf.CLIPImageProcessorPil(
        size={"height": image_size, "width": image_size}, do_center_crop=False, crop_size=None,
    )  # fmt: skip
    image_processor.image_seq_length = seq_len
    processor = tf.Florence2Processor(image_processor=image_processor, tokenizer=tok)
    return tf.Florence2ForConditionalGeneration(config), processor


def _llama(family: str) -> tuple[Any, Any]:
    tf = _transformers()

    tok = _tokenizer(["<|im_start|>"], bos=None, eos="<|im_end|>", pad="<|endoftext|>")
    tok.chat_template = _LLAMA_TEMPLATE
    config = tf.LlamaConfig(
        **_text(), vocab_size=len(tok), eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        bos_token_id=None, tie_word_embeddings=True,
    )  # fmt: skip
    return tf.LlamaForCausalLM(config), tok


_BUILDERS: dict[str, Callable[[str], tuple[Any, Any]]] = {
    "qwen2_vl": _qwen,
    "qwen2_5_vl": _qwen,
    "qwen3_vl": _qwen,
    "idefics3": _idefics,
    "smolvlm": _idefics,
    "llava": _llava,
    "paligemma": _paligemma,
    "florence2": _florence2,
    "llama": _llama,
}


def image_tokens(family: str) -> int:
    """How many image tokens one image becomes in :func:`build_tiny`'s ``family`` (0 for llama)."""
    return {
        "qwen2_vl": _QWEN_PIXELS, "qwen2_5_vl": _QWEN_PIXELS, "qwen3_vl": _QWEN_PIXELS, "idefics3": 4,
        "smolvlm": 4, "llava": 16, "paligemma": 16, "florence2": 65, "llama": 0,
    }[family]  # fmt: skip


def build_tiny(family: str, folder: Path) -> Path:
    """Build a random-weight model of ``family`` and ``save_pretrained`` it with its processor.

    Args:
        family: one of :data:`FAMILIES`.
        folder: where to write (created if missing).

    Returns:
        ``folder``.
    """
    import torch

    if family not in _BUILDERS:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    torch.manual_seed(0)
    model, processor = _BUILDERS[family](family)
    tokenizer = getattr(processor, "tokenizer", processor)
    rows = model.get_input_embeddings().num_embeddings
    if rows != len(tokenizer):
        raise AssertionError(f"{family}: {rows} embedding rows for {len(tokenizer)} tokens")
    generation = model.generation_config
    generation.eos_token_id = tokenizer.eos_token_id
    generation.pad_token_id = tokenizer.pad_token_id
    generation.bos_token_id = tokenizer.bos_token_id
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
