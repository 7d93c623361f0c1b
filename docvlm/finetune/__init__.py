"""Fine-tuning: training data from docvlm's own tasks, and LoRA adapters trained on it with TRL and peft.

docvlm knows, for every task and model family, the exact request a task sends (prompt, page images, the text
near the candidate values) and the exact output its constraint accepts. [`build_dataset`][docvlm.finetune.build_dataset] turns labelled
examples into those requests paired with their true answers; [`train`][docvlm.finetune.train] trains a LoRA adapter on them;
``dv.load_model(spec, adapter=folder)`` uses it::

    from docvlm.eval import load_dataset
    from docvlm.finetune import build_dataset, train

    data = build_dataset("extract", load_dataset("receipts/", "sroie"), "default")
    result = train("default", data, "adapter/", epochs=2)
    model = dv.load_model("default-base", adapter="adapter/")

Importing this package is light: torch, transformers, trl and peft load when training starts (the ``finetune``
extra installs them).
"""

from docvlm.finetune.data import TASKS, FineTuneDataset, TrainingExample, build_dataset, same_value, save_jsonl
from docvlm.finetune.training import ADAPTER_INFO, TrainResult, completion_loss, encode_example, train

__all__ = [
    "ADAPTER_INFO",
    "TASKS",
    "FineTuneDataset",
    "TrainResult",
    "TrainingExample",
    "build_dataset",
    "completion_loss",
    "encode_example",
    "same_value",
    "save_jsonl",
    "train",
]
