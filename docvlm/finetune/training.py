"""Training a LoRA adapter on docvlm's training examples with TRL's ``SFTTrainer`` and peft.

The sequences are encoded by the model's own prompt code (the chat template or the family's raw prompt, through
its processor for images), the same code that encodes them at inference, and the loss is on the completion only:

- a text-only model: the prompt's tokens, then the completion's tokens as
  [`Model.score`][docvlm.models.base.Model.score] splits them after that prompt, then the end-of-turn token;
- a vision-language model: the processor's tokens of the prompt (images expanded) followed by the completion
  and the end token; the prompt's tokens are masked out of the loss;
- PaliGemma: the processor's own ``suffix`` (its prefix attends both ways, the suffix causally, as at
  inference); Florence-2 (encoder-decoder): the prompt and image to the encoder, the completion as the labels.

Checkpoints are written under ``<output_dir>/checkpoints`` every ``save_steps`` steps and a run started again
with the same ``output_dir`` resumes from the last one; every logged step's loss is appended to
``<output_dir>/loss.jsonl``. The adapter (``adapter_config.json``, ``adapter_model.safetensors``) and a record of
the run (``docvlm_adapter.json``) end up in ``output_dir``, ready for ``dv.load_model(spec, adapter=output_dir)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.errors import UsageError

if TYPE_CHECKING:
    from docvlm.finetune.data import FineTuneDataset, TrainingExample
    from docvlm.models.transformers import TransformersModel

__all__ = ["ADAPTER_INFO", "TrainResult", "completion_loss", "encode_example", "train"]

#: The file beside the adapter that records how it was trained.
ADAPTER_INFO = "docvlm_adapter.json"


@dataclass
class TrainResult:
    """What [`train`][docvlm.finetune.train] did.

    Attributes:
        adapter: the folder holding the adapter.
        steps: optimizer steps taken (over all runs that resumed into this folder).
        losses: the training loss of each logged step, in order.
        examples: examples trained on (after leaving out those longer than ``max_length``).
        dropped: examples left out because they were longer than ``max_length`` tokens.
        seconds: wall-clock seconds of this run.
        info: what was written to ``docvlm_adapter.json``.
    """

    adapter: Path
    steps: int
    losses: list[float] = field(default_factory=list)
    examples: int = 0
    dropped: int = 0
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


# encoding ------------------------------------------------------------------------------------------------------
def _family(model: TransformersModel) -> str:
    return model.profile.name


def encode_example(model: TransformersModel, example: TrainingExample) -> tuple[list[int], list[int]]:
    """Token ids and labels (``-100`` on the prompt) of a text-only example, exactly as the model reads the prompt
    at inference and splits the completion after it (see [`Model.score`][docvlm.models.base.Model.score]), with the
    end-of-turn token after the completion.

    Raises:
        UsageError: an example with images (those are encoded by the processor at training time).
    """
    if example.images:
        raise UsageError("encode_example encodes text-only examples; images go through the processor")
    prompt, _ = model.render_prompt(example.messages)
    tokenizer = model.tokenizer
    prompt_ids, completion = model.split_tokens(prompt, example.completion)
    end = [int(tokenizer.eos_token_id)] if tokenizer.eos_token_id is not None else []
    ids = prompt_ids + completion + end
    return ids, [-100] * len(prompt_ids) + completion + end


class _Collator:
    """Batches of examples as tensors, the prompt masked out of the labels."""

    def __init__(self, model: TransformersModel, examples: Sequence[TrainingExample],
                 encoded: dict[int, tuple[list[int], list[int]]]) -> None:
        self.model = model
        self.examples = examples
        self.encoded = encoded
        self.pad = int(model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        indices = [int(r["index"]) for r in rows]
        if all(i in self.encoded for i in indices):
            return self._text([self.encoded[i] for i in indices])
        return self._vision([self.examples[i] for i in indices])

    def _text(self, items: list[tuple[list[int], list[int]]]) -> dict[str, Any]:
        import torch

        n = max(len(ids) for ids, _ in items)
        return {
            "input_ids": torch.tensor([ids + [self.pad] * (n - len(ids)) for ids, _ in items]),
            "attention_mask": torch.tensor([[1] * len(ids) + [0] * (n - len(ids)) for ids, _ in items]),
            "labels": torch.tensor([labels + [-100] * (n - len(labels)) for _, labels in items]),
        }

    def _vision(self, batch: list[TrainingExample]) -> dict[str, Any]:
        import torch

        model = self.model
        processor = model.processor
        tokenizer = model.tokenizer
        prompts, images = zip(*(model.render_prompt(e.messages) for e in batch), strict=True)
        family = _family(model)
        side = tokenizer.padding_side
        tokenizer.padding_side = "right"
        try:
            kwargs: dict[str, Any] = {"padding": True}
            if all(images):
                kwargs["images"] = [list(i) for i in images]
            elif any(images):
                raise UsageError("in one training batch, every example must have images or none may",
                                 hint="train with batch_size=1")
            if family == "paligemma":  # the processor builds the labels: prefix both ways, suffix causal
                raw = processor(text=list(prompts), suffix=[e.completion for e in batch], return_tensors="np",
                                **kwargs)
                return {k: torch.from_numpy(v) for k, v in raw.items()}
            if model.is_encoder_decoder:  # Florence-2: the completion is the decoder's target
                inputs = dict(processor(text=list(prompts), return_tensors="pt", **kwargs))
                targets = tokenizer([e.completion for e in batch], padding=True, return_tensors="pt")
                labels = targets["input_ids"].masked_fill(targets["attention_mask"] == 0, -100)
                return {**inputs, "labels": labels}
            end = tokenizer.eos_token or ""
            full = dict(processor(text=[p + e.completion + end for p, e in zip(prompts, batch, strict=True)],
                                  return_tensors="pt", **kwargs))
            labels = full["input_ids"].clone()
            for row, (prompt, imgs) in enumerate(zip(prompts, images, strict=True)):
                alone = processor(text=[prompt], images=[list(imgs)] if imgs else None, return_tensors="pt")
                labels[row, : alone["input_ids"].shape[1]] = -100
            labels[full["attention_mask"] == 0] = -100
            return {**full, "labels": labels}
        finally:
            tokenizer.padding_side = side


def completion_loss(model: Any, dataset: FineTuneDataset | Sequence[TrainingExample], *, max_length: int = 4096) -> float:
    """The mean loss (negative log-likelihood per completion token) of the dataset's completions under ``model``,
    encoded as training encodes them: how well a model (with or without an adapter) predicts the true answers.

    Raises:
        UsageError: an empty dataset, or a model that is not a local transformers model.
    """
    import torch

    tm = _load(model)
    examples = list(dataset)
    encoded = {}
    for i, ex in enumerate(examples):
        if not ex.images and not tm.is_encoder_decoder:
            ids, labels = encode_example(tm, ex)
            if len(ids) <= max_length:
                encoded[i] = (ids, labels)
    indices = [i for i in range(len(examples)) if i in encoded or examples[i].images or tm.is_encoder_decoder]
    if not indices:
        raise UsageError("no example to score", hint="pass examples built for this model")
    collate = _Collator(tm, examples, encoded)
    total = tokens = 0.0
    with torch.inference_mode():
        for i in indices:
            batch = {k: v.to(tm.model.device) if hasattr(v, "to") else v for k, v in collate([{"index": i}]).items()}
            labels = batch["labels"]
            out = tm.model(**batch)
            n = float((labels[:, 1:] != -100).sum()) if not tm.is_encoder_decoder else float((labels != -100).sum())
            total += float(out.loss) * n
            tokens += n
    return total / max(tokens, 1.0)


# training ------------------------------------------------------------------------------------------------------
def _load(model: Any) -> TransformersModel:
    from docvlm.models import load_model
    from docvlm.models.transformers import TransformersModel

    if isinstance(model, (str, Path)):
        spec = str(model)
        loaded = load_model(spec, runtime="transformers") if spec in ("default", "default-base") else load_model(spec)
    else:
        loaded = model
    if not isinstance(loaded, TransformersModel):
        raise UsageError(
            f"fine-tuning trains local transformers models; {getattr(loaded, 'spec', '') or type(loaded).__name__} "
            "is not one",
            hint="pass 'default', 'transformers:<folder>' or a folder written by save_pretrained",
        )
    return loaded


def train(
    model: Any,
    dataset: FineTuneDataset,
    output_dir: str | Path,
    *,
    epochs: float = 1.0,
    max_steps: int | None = None,
    learning_rate: float = 2e-4,
    batch_size: int = 1,
    gradient_accumulation: int = 1,
    lora_r: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.0,
    target_modules: str | Sequence[str] = "all-linear",
    top_layers: int | None = None,
    max_length: int = 2048,
    warmup_steps: int = 0,
    seed: int = 0,
    resume: bool = True,
    save_steps: int = 100,
    logging_steps: int = 1,
    device: str | None = None,
    bf16: bool | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a LoRA adapter for ``model`` on ``dataset`` with TRL's ``SFTTrainer`` (completion-only loss).

    Args:
        model: the model to adapt: ``"default"``, a ``"transformers:<folder>"`` spec, a folder, or a loaded
            [`TransformersModel`][docvlm.models.transformers.TransformersModel] (its weights then get the LoRA
            layers in place: load a fresh one to keep using the original).
        dataset: examples from [`build_dataset`][docvlm.finetune.build_dataset] for this model's family.
        output_dir: where the adapter, the checkpoints and the loss log go.
        epochs: passes over the data (ignored when ``max_steps`` is given).
        max_steps: optimizer steps to take in all (a resumed run continues up to it).
        learning_rate: the peak learning rate (linear decay, after ``warmup_steps``).
        batch_size: examples per step on the device.
        gradient_accumulation: batches per optimizer step.
        lora_r: the LoRA rank (peft ``LoraConfig``).
        lora_alpha: the LoRA scaling numerator.
        lora_dropout: dropout on the LoRA input.
        target_modules: the modules to adapt (``"all-linear"``: every linear layer but the output head).
        warmup_steps: steps of linear warm-up.
        seed: seeds the run (data order, LoRA initialisation).
        top_layers: put LoRA only on the last ``top_layers`` transformer layers (the backward pass then stops
            there: much faster on a CPU); ``None`` for all layers.
        max_length: examples with more tokens than this are left out (never cut: a cut prompt is not what the
            model reads at inference).
        resume: continue from the last checkpoint in ``output_dir`` if there is one.
        save_steps: write a checkpoint every this many steps.
        device: ``"cpu"``, ``"cuda"``, ...; default: a GPU when there is one.
        bf16: train in bfloat16 autocast (default: on a GPU that supports it).
        progress: show a progress bar.

    Returns:
        The adapter folder, steps, losses and timing ([`TrainResult`][docvlm.finetune.TrainResult]).

    Raises:
        UsageError: an empty dataset, or a model that is not a local transformers model.
        MissingDependencyError: trl or peft is not installed (``pip install 'docvlm[finetune]'``).
    """
    from docvlm._optional import require

    trl: Any = require("trl", "finetune", purpose="fine-tuning")
    peft: Any = require("peft", "finetune", purpose="fine-tuning")
    datasets: Any = require("datasets", "finetune", purpose="fine-tuning")
    trainer_utils: Any = require("transformers.trainer_utils", "local", purpose="fine-tuning")
    import torch
    import transformers

    from docvlm import __version__
    from docvlm._threads import apply_torch_threads, threads_for

    if not len(dataset):
        raise UsageError("the training dataset is empty", hint="build it with docvlm.finetune.build_dataset")
    if max_steps is not None and max_steps < 1:
        raise UsageError(f"max_steps must be at least 1, got {max_steps}")
    start = time.perf_counter()
    tm = _load(model)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    examples = list(dataset)
    if any(e.images for e in examples) and not tm.supports_images:
        raise UsageError(f"{tm.spec} is a text-only model and the dataset has examples with images",
                         hint="build the dataset for this model: build_dataset(task, examples, model)")
    encoded: dict[int, tuple[list[int], list[int]]] = {}
    keep: list[int] = []
    for i, ex in enumerate(examples):
        if ex.images or tm.is_encoder_decoder:
            keep.append(i)
            continue
        ids, labels = encode_example(tm, ex)
        if len(ids) <= max_length:
            encoded[i] = (ids, labels)
            keep.append(i)
    if not keep:
        raise UsageError(f"every example is longer than max_length={max_length} tokens",
                         hint="raise max_length, or build shorter prompts (max_chars=)")
    cuda = torch.cuda.is_available()
    device = device or ("cuda" if cuda else "cpu")
    on_cpu = device.startswith("cpu")
    if on_cpu:
        apply_torch_threads(threads_for(threads=tm.threads))
    if bf16 is None:
        bf16 = not on_cpu and torch.cuda.is_bf16_supported()
    n_layers = int(getattr(tm.model.config.get_text_config(), "num_hidden_layers", 0) or 0)
    targets: str | list[str] = target_modules if isinstance(target_modules, str) else list(target_modules)
    layers = None
    if top_layers and n_layers:
        layers = list(range(max(0, n_layers - top_layers), n_layers))
        if targets == "all-linear":  # peft wants module names with layers_to_transform
            targets = _layer_linears(tm.model)
    lora = peft.LoraConfig(
        r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, target_modules=targets,
        layers_to_transform=layers,
        task_type="SEQ_2_SEQ_LM" if tm.is_encoder_decoder else "CAUSAL_LM",
    )
    names = {f.name for f in dataclasses.fields(trl.SFTConfig)}
    no_checkpointing = {"activation_checkpointing": False} if "activation_checkpointing" in names \
        else {"gradient_checkpointing": False}
    config = trl.SFTConfig(
        **no_checkpointing,
        output_dir=str(out / "checkpoints"),
        num_train_epochs=epochs,
        max_steps=max_steps if max_steps is not None else -1,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=gradient_accumulation,
        learning_rate=learning_rate,
        warmup_steps=warmup_steps,
        lr_scheduler_type="linear",
        logging_steps=logging_steps,
        save_steps=save_steps,
        save_total_limit=2,
        seed=seed,
        data_seed=seed,
        report_to=[],
        use_cpu=on_cpu,
        bf16=bool(bf16),
        dataset_kwargs={"skip_prepare_dataset": True},
        remove_unused_columns=False,
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        max_length=None,
    )
    log_path = out / "loss.jsonl"
    losses: list[float] = []

    class _LossLog(transformers.TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))
                with log_path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"step": state.global_step, "loss": float(logs["loss"]),
                                         "learning_rate": logs.get("learning_rate"), "epoch": logs.get("epoch"),
                                         "seconds": round(time.perf_counter() - start, 1)}) + "\n")

    train_set = datasets.Dataset.from_dict({"index": keep})
    with _quiet():
            trainer = trl.SFTTrainer(model=tm.model, args=config, train_dataset=train_set, processing_class=tm.processor,
                                 data_collator=_Collator(tm, examples, encoded), peft_config=lora,
                                 callbacks=[_LossLog()])
    if not progress:
        trainer.remove_callback(transformers.PrinterCallback)
    last = trainer_utils.get_last_checkpoint(str(out / "checkpoints")) if resume and (out / "checkpoints").is_dir() else None
    with _quiet():
        trainer.train(resume_from_checkpoint=last)
    trained: Any = trainer.model
    trained.save_pretrained(str(out))
    _portable_config(out, tm.spec)
    info = {
        "base": tm.spec, "family": _family(tm), "tasks": sorted({examples[i].task for i in keep}),
        "examples": len(keep), "dropped": len(examples) - len(keep), "steps": int(trainer.state.global_step),
        "epochs": epochs, "max_steps": max_steps, "learning_rate": learning_rate, "batch_size": batch_size,
        "gradient_accumulation": gradient_accumulation, "lora": {"r": lora_r, "alpha": lora_alpha,
        "dropout": lora_dropout, "target_modules": target_modules, "top_layers": top_layers}, "seed": seed,
        "max_length": max_length, "final_loss": losses[-1] if losses else None,
        "seconds": round(time.perf_counter() - start, 1), "device": device, "bf16": bool(bf16),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs" + (f", {torch.cuda.get_device_name()}" if cuda else ""),
        "docvlm": __version__, "trl": trl.__version__, "peft": peft.__version__, "torch": torch.__version__,
        "trained": time.strftime("%Y-%m-%d"),
    }
    (out / ADAPTER_INFO).write_text(json.dumps(info, indent=2))
    return TrainResult(adapter=out, steps=int(trainer.state.global_step), losses=losses, examples=len(keep),
                       dropped=len(examples) - len(keep), seconds=time.perf_counter() - start, info=info)


def _layer_linears(model: Any) -> list[str]:
    """Names of the linear modules inside the language model's numbered layers (``q_proj``, ``down_proj``, ...)."""
    import re

    import torch

    names = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and re.search(r"\.layers\.\d+\.", name) \
                and "vision" not in name and "visual" not in name:
            names.add(name.rsplit(".", 1)[-1])
    if not names:
        raise UsageError("top_layers found no linear layers in numbered decoder layers",
                         hint="pass target_modules= explicitly, or top_layers=None")
    return sorted(names)


def _portable_config(folder: Path, spec: str) -> None:
    """Name the base model by its docvlm spec in ``adapter_config.json``, not by a local folder path."""
    path = folder / "adapter_config.json"
    if path.exists():
        data = json.loads(path.read_text())
        data["base_model_name_or_path"] = spec
        path.write_text(json.dumps(data, indent=2))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence transformers' and TRL's info logs and the libraries' warnings about each other's renamed
    arguments during training (the progress bar and the loss log stay)."""
    import importlib

    tf_logging: Any = importlib.import_module("transformers.utils.logging")
    level = tf_logging.get_verbosity()
    tf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            quiet_library_warnings()
            yield
    finally:
        tf_logging.set_verbosity(level)


def quiet_library_warnings() -> None:
    """Ignore the FutureWarnings peft and TRL trigger in transformers by reading renamed attributes (not ours to
    fix; inside a ``warnings.catch_warnings()`` block)."""
    warnings.filterwarnings("ignore", message=r".*(gradient|activation)_checkpointing.*", category=FutureWarning)
