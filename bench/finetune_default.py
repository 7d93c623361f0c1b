"""Train, measure and (only if it helps) ship the LoRA adapter of docvlm's default model.

Usage: python -m bench.finetune_default --data ../shared/realdev [--work DIR] [steps ...]
       steps: rankers data train eval ship (default: all of them, in order; each reuses what an earlier run wrote)

The recipe (every number here is an argument with this default, and is written into the adapter's
``docvlm_adapter.json``):

1. **Folds.** realdev's SROIE receipts and FUNSD training forms are grouped by vendor / form
   (`bench.train_ranker.fold_of`, 5 folds, seed 0). Fold ``--holdout`` (0) is held back: nothing of it is
   trained on; it is what the adapter is chosen on.
2. **Rankers** (``rankers``): for each fold, the extraction ranker trained without it (realdev words as given and
   from docvlm's OCR, plus 100 generated invoices and forms, as ``python -m bench.realdata --cv`` does), so the
   candidates offered for a document are as hard as they are for a document the shipped ranker never saw.
3. **Data** (``data``): ``dv.extract`` is run on each training document through
   [`docvlm.finetune.build_dataset`][docvlm.finetune.build_dataset] with the ranker of its fold: each field's scoring request (the
   text near the candidates and the field's question, exactly as extraction builds it) and the field's true
   value. Receipts ask for ``company, date, address, total`` (the schema of `bench.real_fields`); forms ask for
   every linked FUNSD question (a field named by the question, described by its printed text). Words come from
   the dataset and from docvlm's OCR. Generated invoices and forms (`docvlm.synth`, seeds from 2000, field names
   drawn from ``FIELD_ALIASES``, with or without descriptions) add varied wording. At most ``--per-form`` fields
   of a form are kept (chosen by seed), and examples longer than ``--max-length`` tokens are left out.
4. **Train** (``train``): ``--max-examples`` (800) of those examples, shuffled with the seed, for ``--epochs`` (1),
   with [`docvlm.finetune.train`][docvlm.finetune.train] (TRL ``SFTTrainer``, completion-only loss): LoRA r=8, alpha 16 on the
   last ``--top-layers`` (8) of SmolLM2's 30 layers, bf16 autocast on CPUs that have it, learning rate 2e-4 with
   linear decay, 4 examples per optimizer step, seed 0.
5. **Eval** (``eval``): on the held-back fold, with the ranker (and key detector) trained without it: ``dv.extract``
   with the layout ranking alone, the untuned model (``default-base``) and the tuned one (both scoring in
   bfloat16 where the CPU has it, as the default model's runtimes score), each field's value compared with the
   truth (whitespace and case aside); on forms also ``dv.key_values``' question -> answer links (F1, texts without
   whitespace). The model's weight beside the ranker (``choice_weight``) is swept. Both word sources.
6. **Ship** (``ship``): the adapter is copied into ``docvlm/data/default-adapter`` only if, at the weight it does
   best at on the held-back fold (which becomes its ``choice_weight``), the tuned model beats the untuned default
   model (``choice_weight`` 0: the layout ranking) on receipts' fields, forms' fields and forms' key -> value
   links (``dv.key_values``), each averaged over both word sources; otherwise nothing is shipped and the figures
   say why. Choosing the weight on the fold the figures come from flatters them a little: the sweep shows by
   how much.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

STEPS = ("rankers", "data", "train", "eval", "ship")
WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0)
REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "docvlm" / "data" / "default-adapter"


def _work_default() -> Path:
    from docvlm.models.default import cache_root

    return cache_root() / "finetune-default"


# documents -----------------------------------------------------------------------------------------------------
def documents(data: Path, limit: int | None) -> list[dict[str, Any]]:
    """Every realdev receipt and form: its id, group, image, words (given and OCR) and true fields."""
    from bench import train_ranker as tr

    out: list[dict[str, Any]] = []
    root = data / "sroie"
    for key in sorted((root / "key").glob("*.json"))[:limit]:
        truth = json.loads(key.read_text())
        image = next((root / "img").glob(f"{key.stem}.*"))
        out.append({"id": f"sroie/{key.stem}", "set": "receipts", "group": tr.squash(truth.get("company", key.stem)),
                    "image": image, "given": tr.sroie_items(root, key.stem),
                    "fields": {k: v for k, v in truth.items() if v.strip()}})
    root = data / "funsd" / "train"
    for file in sorted((root / "annotations").glob("*.json"))[:limit]:
        ann = json.loads(file.read_text())
        words = [(w["text"], w["box"]) for e in ann["form"] for w in e.get("words", []) if w["text"].strip()]
        out.append({"id": f"funsd/{file.stem}", "set": "forms", "group": file.stem,
                    "image": root / "images" / f"{file.stem}.png", "given": words,
                    "fields": dict(tr.funsd_pairs(ann)), "links": tr.funsd_links(ann)})
    return out


def folds(docs: list[dict[str, Any]], k: int) -> dict[str, int]:
    """Each document's fold (`bench.train_ranker.fold_of` over the groups of receipts and forms together)."""
    import numpy as np

    groups = sorted({d["group"] for d in docs})
    rng = np.random.default_rng(0)
    rng.shuffle(groups)
    by_group = {g: i % k for i, g in enumerate(groups)}
    return {d["id"]: by_group[d["group"]] for d in docs}


def open_page(doc: dict[str, Any], words: str) -> Any:
    import docvlm as dv
    from bench.train_ranker import ocr_words

    items = doc["given"] if words == "given" else ocr_words(doc["image"])
    return dv.open(doc["image"], words={0: items})[0]


def schema_of(doc: dict[str, Any]) -> tuple[type[Any], dict[str, Any]]:
    """The extraction schema of a document and its truth by field name."""
    from pydantic import Field, create_model

    from bench.real_fields import Receipt

    if doc["set"] == "receipts":
        return Receipt, dict(doc["fields"])
    fields: dict[str, Any] = {}
    truth: dict[str, Any] = {}
    taken: set[str] = set()
    for question, answer in doc["fields"].items():
        name = _slug(question.rstrip(": "), taken)
        fields[name] = (str | None, Field(default=None, description=question.strip()))
        truth[name] = answer
    return create_model("Form", **fields), truth


def _slug(text: str, taken: set[str]) -> str:
    import re

    base = re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")[:40] or "field"
    if base[0].isdigit() or base.startswith("model_"):
        base = f"f_{base}"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def right(value: Any, truth: Any) -> bool:
    from bench.real_fields import squash

    return value is not None and squash(value) == squash(truth)


# steps ---------------------------------------------------------------------------------------------------------
def step_rankers(args: argparse.Namespace, docs: list[dict[str, Any]], fold: dict[str, int]) -> None:
    from bench import train_ranker as tr

    target = args.work / "rankers"
    todo = [k for k in range(args.folds) if args.force or not (target / f"ranker-{k}.npz").exists()
            or (k == args.holdout and not (target / f"keys-{k}.npz").exists())]
    if not todo:
        print("rankers: reusing", target)
        return
    target.mkdir(parents=True, exist_ok=True)
    examples = tr.load(args.data, ["sroie", "funsd"], ["given", "ocr"], args.limit, 0)
    synth = tr.load(args.data, ["invoice", "form"], [], None, 100)
    for k in todo:
        start = time.perf_counter()
        held = {d["id"] for d in docs if fold[d["id"]] == k}
        train_set = [e for e in examples if e.id.rsplit("/", 1)[0] not in held] + synth
        models = tr.train(train_set, 80, k)
        models.ranker.save(target / f"ranker-{k}.npz")
        if models.keys is not None:
            models.keys.save(target / f"keys-{k}.npz")
        print(f"rankers: fold {k} ({len(held)} documents held out) in {time.perf_counter() - start:.0f} s", flush=True)


def _ranker(args: argparse.Namespace, k: int, name: str = "ranker") -> Any:
    from docvlm.tasks._rank import Ranker

    return Ranker.load(args.work / "rankers" / f"{name}-{k}.npz")


def synth_pairs(n: int, seed: int) -> list[tuple[Any, Any]]:
    """Generated invoices and forms as (document, instance) pairs of a schema whose field names are drawn from
    ``FIELD_ALIASES`` (with the generator's descriptions half of the time)."""
    from pydantic import Field, create_model

    from docvlm.synth import FIELD_ALIASES, generate

    rng = random.Random(seed)
    out = []
    for i in range(n):
        synthetic = generate("invoice" if i % 2 == 0 else "form", seed + i)
        schema = synthetic.schema_type
        assert schema is not None
        fields: dict[str, Any] = {}
        values: dict[str, Any] = {}
        taken: set[str] = set()
        for name, info in schema.model_fields.items():
            alias = rng.choice(FIELD_ALIASES.get(name, (name,)))
            if alias in taken:
                alias = name
            taken.add(alias)
            describe = info.description if rng.random() < 0.5 else None
            fields[alias] = (info.annotation | None if info.is_required() else info.annotation,
                             Field(default=None, description=describe))
            truth = synthetic.fields.get(name)
            values[alias] = truth.value if truth is not None else None
        model = create_model("Document", **fields)
        out.append((synthetic.open(), model(**values)))
    return out


def step_data(args: argparse.Namespace, docs: list[dict[str, Any]], fold: dict[str, int]) -> None:
    from docvlm.finetune import FineTuneDataset, build_dataset, save_jsonl

    target = args.work / "train.pkl"
    if target.exists() and not args.force:
        print("data: reusing", target)
        return
    student = _load("default-base")
    dataset = FineTuneDataset()
    rng = random.Random(args.seed)
    start = time.perf_counter()
    train_docs = [d for d in docs if fold[d["id"]] != args.holdout]
    for n, doc in enumerate(train_docs):
        schema, truth = schema_of(doc)
        for words in args.words.split(","):
            page = open_page(doc, words)
            instance = schema.model_construct(**truth)
            part = build_dataset("extract", [(page, instance)], student, ranker=_ranker(args, fold[doc["id"]]))
            if doc["set"] == "forms" and len(part.examples) > args.per_form:
                part.examples = rng.sample(part.examples, args.per_form)
            for ex in part.examples:
                ex.source = f"{doc['id']}/{words}"
            dataset = dataset + part
        if n % 20 == 0:
            print(f"data: {n + 1}/{len(train_docs)} documents, {len(dataset)} examples, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    synth = build_dataset("extract", synth_pairs(args.synth, 2000), student)
    for ex in synth.examples:
        ex.source = f"synth/{ex.source}"
    dataset = dataset + synth
    print("data:", json.dumps(dataset.summary()), f"{time.perf_counter() - start:.0f} s")
    args.work.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as fh:
        pickle.dump(dataset.examples, fh)
    save_jsonl(dataset, args.work / "train.jsonl")


def _load(spec: str, adapter: Path | None = None, dtype: str | None = None) -> Any:
    import docvlm as dv

    options: dict[str, Any] = {"adapter": adapter} if adapter else {}
    if dtype:
        options["dtype"] = dtype
    return dv.load_model(spec, runtime="transformers", **options)


def step_train(args: argparse.Namespace) -> None:
    from docvlm.finetune import FineTuneDataset, train

    adapter = args.work / "adapter"
    if (adapter / "adapter_model.safetensors").exists() and not args.force:
        print("train: reusing", adapter)
        return
    with (args.work / "train.pkl").open("rb") as fh:
        examples = pickle.load(fh)
    rng = random.Random(args.seed)
    rng.shuffle(examples)
    if args.max_examples:
        examples = examples[:args.max_examples]
    result = train("default-base", FineTuneDataset(examples), adapter, epochs=args.epochs, learning_rate=args.lr,
                   lora_r=8, lora_alpha=16, top_layers=args.top_layers, max_length=args.max_length, seed=args.seed,
                   bf16=args.bf16, gradient_accumulation=args.accumulation, save_steps=50)
    info = json.loads((adapter / "docvlm_adapter.json").read_text())
    info["recipe"] = {k: str(v) for k, v in vars(args).items() if k not in ("steps",)}
    (adapter / "docvlm_adapter.json").write_text(json.dumps(info, indent=2))
    print(f"train: {result.steps} steps on {result.examples} examples ({result.dropped} longer than "
          f"{args.max_length} tokens left out) in {result.seconds / 60:.1f} min; loss {result.losses[0]:.3f} -> "
          f"{sum(result.losses[-10:]) / len(result.losses[-10:]):.3f} (mean of the last 10 logged)")


class _Memo:
    """A model whose scores are remembered, so extraction runs again at each LM weight without the model."""

    def __init__(self, model: Any, end: bool = False) -> None:
        self.model = model
        self.end = model.tokenizer.eos_token if end else ""  # score "value<end of turn>": the value and no more
        self.memo: dict[tuple[str, tuple[str, ...]], list[float]] = {}

    def wrap(self) -> Any:
        from docvlm.models.base import Model

        outer = self

        class Memo(Model):
            spec = outer.model.spec
            supports_images = False

            @property
            def supports_scoring(self) -> bool:
                return True

            def _complete(self, requests: Any) -> list[str]:  # pragma: no cover - extraction scores
                raise NotImplementedError

            def _score(self, messages: Any, continuations: list[str], assistant_prefix: str) -> list[float]:
                key = ("\n".join(m.text for m in messages), tuple(continuations))
                if key not in outer.memo:
                    outer.memo[key] = outer.model.score(messages, [c + outer.end for c in continuations])
                return outer.memo[key]

        return Memo()


def _read(args: argparse.Namespace, held: list[dict[str, Any]], name: str, model: Any, end: bool) -> dict[str, Any]:
    """One reader's results on the held-back documents: per (set, words, weight) the fields right, and per
    (words, weight) the link counts (right, predicted, true); with its CPU seconds."""
    from bench.real_fields import squash
    from docvlm.tasks.extract import extract
    from docvlm.tasks.key_values import key_values

    ranker = _ranker(args, args.holdout)
    key_model = _ranker(args, args.holdout, "keys")
    fields: dict[str, list[bool]] = defaultdict(list)
    links: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    seconds = 0.0
    start = time.perf_counter()
    for n, doc in enumerate(held):
        schema, truth = schema_of(doc)
        for words in args.words.split(","):
            page = open_page(doc, words)
            memo = _Memo(model, end).wrap() if model is not None else None
            for w in WEIGHTS if model is not None else (0.0,):
                if memo is not None:
                    memo.choice_weight = w  # the model's weight beside the ranking (0: the ranking alone)
                t0 = time.process_time()
                try:
                    got = extract(memo, page, schema, ranker=ranker).value.model_dump()
                except Exception as exc:
                    print(f"  {doc['id']} {name}: {exc}", file=sys.stderr)
                    got = {}
                for field, want in truth.items():
                    if want is not None:
                        fields[f"{doc['set']}/{words}/{w}"].append(right(got.get(field), want))
                if doc["set"] == "forms":  # the same model in dv.key_values: question -> answer links
                    # the pair model ships trained on every realdev form (no held-back fold of it): not read here,
                    # so these links stay the link model's reading, as this bench has always measured them
                    kv = key_values(memo, page, ranker=ranker, key_model=key_model, pairs=False)
                    found = {(squash(p.key.quote), squash(p.value.quote)) for p in kv if p.value is not None}
                    want_links = {(squash(q), squash(a)) for q, a in doc["links"]}
                    c = links[f"{words}/{w}"]
                    c[0] += len(found & want_links)
                    c[1] += len(found)
                    c[2] += len(want_links)
                seconds += time.process_time() - t0
        if n % 10 == 9:
            print(f"eval {name}: {n + 1}/{len(held)} documents, {time.perf_counter() - start:.0f} s", flush=True)
    return {"fields": dict(fields), "links": dict(links), "cpu_seconds": seconds}


def _score_dtype() -> str:
    from docvlm.models.default import _score_dtype as dtype

    return dtype()


def step_eval(args: argparse.Namespace, docs: list[dict[str, Any]], fold: dict[str, int]) -> dict[str, Any]:
    """Each reader's results are kept in ``<work>/eval-fold<k>/`` (the tuned one under its adapter's hash), so
    readers can be measured apart (the untuned model while the adapter trains) and are not measured twice."""
    from docvlm.models._adapters import adapter_key

    held = [d for d in docs if fold[d["id"]] == args.holdout][:args.eval_limit]
    folder = args.work / f"eval-fold{args.holdout}{'-limit' + str(args.eval_limit) if args.eval_limit else ''}"
    folder.mkdir(parents=True, exist_ok=True)
    adapter = args.adapter or args.work / "adapter"
    tuned = (adapter / "adapter_config.json").exists()
    readers = ["layout", "untuned", *(["tuned"] if tuned else [])]
    if args.end:
        readers += ["untuned+end", *(["tuned+end"] if tuned else [])]
    if args.readers:
        readers = [r for r in readers if r in args.readers.split(",")]
    results: dict[str, Any] = {}
    loaded: dict[str, Any] = {}
    for name in readers:
        base = name.split("+")[0]
        file = folder / (f"{name}-{adapter_key(adapter)}.json" if base == "tuned" else f"{name}.json")
        if file.exists() and not args.force:
            results[name] = json.loads(file.read_text())
            continue
        if base != "layout" and base not in loaded:  # scoring as the default model's runtimes score (see _score_dtype)
            loaded[base] = _load("default-base", adapter if base == "tuned" else None, dtype=_score_dtype())
        results[name] = _read(args, held, name, loaded.get(base), name.endswith("+end"))
        file.write_text(json.dumps(results[name]))
    from docvlm.tasks.extract import LM_WEIGHT

    report: dict[str, Any] = {"holdout": args.holdout, "documents": {s: sum(d["set"] == s for d in held)
                                                                     for s in ("receipts", "forms")},
                              "lm_weight": LM_WEIGHT, "figures": {},
                              "cpu_seconds": {n: r["cpu_seconds"] for n, r in results.items()}}
    print(f"\nheld-back fold {args.holdout}: {report['documents']['receipts']} receipts, "
          f"{report['documents']['forms']} forms; fields right (whitespace and case aside), links F1")
    print(f"  {'set':9s} {'words':6s} {'reader':12s} " + " ".join(f"w={w:<5}" for w in WEIGHTS) + "  n")
    for set_ in ("receipts", "forms", "links"):
        for words in args.words.split(","):
            for name, res in results.items():
                row = []
                n = 0
                for w in WEIGHTS:
                    w = 0.0 if name == "layout" else w
                    if set_ == "links":
                        c = res["links"].get(f"{words}/{w}")
                        p, r = (c[0] / max(1, c[1]), c[0] / max(1, c[2])) if c else (0.0, 0.0)
                        row.append(2 * p * r / max(1e-9, p + r) if c else float("nan"))
                        n = c[2] if c else 0
                    else:
                        oks = res["fields"].get(f"{set_}/{words}/{w}", [])
                        row.append(sum(oks) / len(oks) if oks else float("nan"))
                        n = len(oks)
                report["figures"][f"{set_}/{words}/{name}"] = dict(zip([str(x) for x in WEIGHTS], row, strict=True))
                print(f"  {set_:9s} {words:6s} {name:12s} " + " ".join(f"{v:7.3f}" for v in row) + f"  {n}")
    (args.work / f"eval-fold{args.holdout}.json").write_text(json.dumps(report, indent=2))
    return report


def step_ship(args: argparse.Namespace) -> None:
    """Ship the adapter if, at the weight it does best at on the held-back fold, it beats the untuned default model
    (whose `choice_weight` is 0: the layout ranking) on receipts' fields, forms' fields and forms' links."""
    from docvlm.models.default import CHOICE_WEIGHT

    report = json.loads((args.work / f"eval-fold{args.holdout}.json").read_text())
    figures = report["figures"]

    def mean(set_: str, reader: str, w: float) -> float:
        values = [v[str(w)] for k, v in figures.items() if k.startswith(f"{set_}/") and k.endswith(f"/{reader}")]
        return sum(values) / len(values) if values else float("nan")

    sets = ("receipts", "forms", "links")  # fields of receipts and forms, and the forms' key -> value links
    if not any(k.endswith("/tuned") for k in figures):
        print("ship: no tuned figures; run eval with an adapter first")
        return
    best = max((w for w in WEIGHTS if w > 0), key=lambda w: sum(mean(s, "tuned", w) for s in sets))
    verdicts = []
    for set_ in sets:
        tuned, untuned = mean(set_, "tuned", best), mean(set_, "untuned", CHOICE_WEIGHT)
        verdicts.append(tuned > untuned)
        print(f"ship: {set_}: tuned {tuned:.3f} (weight {best}) vs untuned {untuned:.3f} (weight {CHOICE_WEIGHT})")
    if not all(verdicts):
        print("ship: the adapter does not beat the untuned model on the held-back fold: not shipped")
        return
    adapter = args.adapter or args.work / "adapter"
    if SHIPPED.exists():
        shutil.rmtree(SHIPPED)
    SHIPPED.mkdir(parents=True)
    for name in ("adapter_config.json", "adapter_model.safetensors", "docvlm_adapter.json"):
        shutil.copy2(adapter / name, SHIPPED / name)
    info = json.loads((SHIPPED / "docvlm_adapter.json").read_text())
    info["choice_weight"] = best  # the Model.choice_weight of "default" with this adapter
    info["held_back_fold"] = report
    (SHIPPED / "docvlm_adapter.json").write_text(json.dumps(info, indent=2))
    print(f"ship: copied into {SHIPPED} with choice_weight {best}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=None, help="where rankers, data and the adapter go")
    ap.add_argument("steps", nargs="*", default=list(STEPS), help=" ".join(STEPS))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--holdout", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="at most this many receipts and forms (a quick run)")
    ap.add_argument("--words", default="given,ocr")
    ap.add_argument("--per-form", type=int, default=4)
    ap.add_argument("--synth", type=int, default=40)
    ap.add_argument("--max-examples", type=int, default=800)
    ap.add_argument("--max-length", type=int, default=768)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--accumulation", type=int, default=4)
    ap.add_argument("--top-layers", type=int, default=8)
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-limit", type=int, default=None)
    ap.add_argument("--readers", default=None, help="eval: only these of layout,untuned,tuned,untuned+end,tuned+end")
    ap.add_argument("--end", action="store_true", help="eval: also score each value followed by the end-of-turn "
                    "token (the value and nothing more), the way extraction could score")
    ap.add_argument("--adapter", type=Path, default=None, help="eval / ship this adapter instead of the trained one")
    ap.add_argument("--force", action="store_true", help="redo steps whose output exists")
    args = ap.parse_args(argv)
    args.work = args.work or _work_default()
    if args.bf16 is None:
        args.bf16 = _score_dtype() == "bfloat16"
    unknown = [s for s in args.steps if s not in STEPS]
    if unknown:
        ap.error(f"unknown steps {unknown}; choose from {STEPS}")
    print(f"data {args.data}  work {args.work}  cpus {len(os.sched_getaffinity(0))}  load {os.getloadavg()[0]:.2f}  "
          f"{time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    docs = documents(args.data, args.limit)
    fold = folds(docs, args.folds)
    for step in STEPS:
        if step not in args.steps:
            continue
        start = time.perf_counter()
        if step == "rankers":
            step_rankers(args, docs, fold)
        elif step == "data":
            step_data(args, docs, fold)
        elif step == "train":
            step_train(args)
        elif step == "eval":
            step_eval(args, docs, fold)
        else:
            step_ship(args)
        print(f"({step}: {time.perf_counter() - start:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
