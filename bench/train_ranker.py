"""Train (and cross-validate) the extraction ranker that ships in ``docvlm/data/ranker.json.gz``.

Usage: python -m bench.train_ranker --data ../shared/realdev [--sets sroie,funsd,invoice,form,receipt]
                                    [--words given,ocr] [--folds 5] [--ablate] [--out docvlm/data/ranker.json.gz]

Training data, every field of every document one group (a softmax over the field's candidate spans):

- ``sroie``: realdev's SROIE receipts (company, date, address, total), words from the dataset's own line boxes
  (``given``) and from docvlm's OCR (``ocr``, cached in ~/.cache/docvlm/bench-ocr);
- ``funsd``: realdev's FUNSD training forms, each linked question a field named by the question's text and its
  answer the value; words from the annotation or OCR;
- ``invoice``, ``form``, ``receipt``: documents from :mod:`docvlm.synth`, whose field names and printed labels
  vary with the seed.

``--folds`` reports grouped cross-validation (documents of one vendor or form template never straddle train and
test) per set and field: the share of fields whose top-ranked span is the value. ``--ablate`` repeats it with
each feature family left out, so what each part adds is measured. ``--out`` trains on everything and writes the
weights with the recipe (sets, seeds, sizes, figures) in their ``info``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from docvlm.tasks._rank import Candidates, FieldSpec, Ranker, fit
from docvlm.tasks.text import document_segments, group_lines, parse_number

OCR_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "docvlm" / "bench-ocr"


@dataclass
class Example:
    """One document's candidates and the true value of each of its fields."""

    id: str
    source: str  # which set
    group: str  # documents of one group stay in one fold (same vendor, same template)
    candidates: Candidates
    fields: list[tuple[FieldSpec, Any]] = field(default_factory=list)


def squash(text: str) -> str:
    """Text compared without whitespace and case (FUNSD keeps tokenizer spaces, SROIE varies its spacing)."""
    return re.sub(r"\s+", "", str(text)).upper()


def matches(spec: FieldSpec, span_text: str, truth: Any) -> bool:
    if spec.kind == "num" and isinstance(truth, (int, float)):
        value = parse_number(re.sub(r"^[^\d\-+]+|[^\d]+$", "", span_text))
        return value is not None and abs(value - float(truth)) < 0.005
    return squash(span_text) == squash(truth)


def candidates_of(pages: list[Any]) -> Candidates:
    segments = document_segments(pages)
    built = []
    for page in pages:
        lines = group_lines([s for s in segments if s.page == page.index])
        built.append((lines, page.width, page.height))
    return Candidates.build(built)


def ocr_words(path: Path) -> list[tuple[str, tuple[float, float, float, float]]]:
    """docvlm's OCR of an image, cached by the file's bytes and docvlm's OCR settings."""
    import docvlm as dv
    from docvlm.documents.ocr import ocr_words as run_ocr

    digest = hashlib.sha1(path.read_bytes()).hexdigest()[:16]
    cache = OCR_CACHE / f"{digest}-{_ocr_settings()}.json"
    if cache.exists():
        return [(t, tuple(b)) for t, b in json.loads(cache.read_text())]  # type: ignore[misc]
    words = run_ocr(dv.open(path)[0])
    out = [(w.text, w.box.xyxy) for w in words]
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(out))
    return out


def _ocr_settings() -> str:
    from docvlm.documents import ocr

    return hashlib.sha1(repr(getattr(ocr, "SETTINGS", "default")).encode()).hexdigest()[:8]


# sets ----------------------------------------------------------------------------------------------------
def sroie_examples(data: Path, words: str, limit: int | None) -> list[Example]:
    import docvlm as dv

    root = data / "sroie"
    out = []
    for key in sorted((root / "key").glob("*.json"))[:limit]:
        truth = json.loads(key.read_text())
        image = next((root / "img").glob(f"{key.stem}.*"))
        if words == "given":
            items = []
            for row in (root / "box" / f"{key.stem}.csv").read_text(encoding="utf-8", errors="replace").splitlines():
                parts = row.split(",", 8)
                if len(parts) == 9:
                    items.append((parts[8], [float(v) for v in parts[:8]]))
        else:
            items = ocr_words(image)  # type: ignore[assignment]
        doc = dv.open(image, words={0: items})
        fields = [(FieldSpec(name), value) for name, value in truth.items() if value.strip()]
        out.append(Example(f"sroie/{key.stem}/{words}", "sroie", squash(truth.get("company", key.stem)),
                           candidates_of([doc[0]]), fields))
    return out


def funsd_examples(data: Path, words: str, limit: int | None) -> list[Example]:
    import docvlm as dv
    from docvlm.eval.datasets import load_dataset

    root = data / "funsd" / "train"
    dataset = load_dataset(root, "funsd", limit=limit)
    out = []
    for sample in dataset.samples:
        image = Path(sample.document)
        if words == "given":
            ann = json.loads((root / "annotations" / f"{image.stem}.json").read_text())
            items = [(w["text"], w["box"]) for ent in ann["form"] for w in ent.get("words", []) if w["text"].strip()]
        else:
            items = ocr_words(image)  # type: ignore[assignment]
        doc = dv.open(image, words={0: items})
        fields = [(FieldSpec(f.label.rstrip(": ")), f.value) for f in sample.fields]  # type: ignore[union-attr]
        # forms of one template share a group: their first words
        out.append(Example(f"funsd/{image.stem}/{words}", "funsd", image.stem, candidates_of([doc[0]]), fields))
    return out


def synth_examples(kind: str, n: int, seed: int) -> list[Example]:
    from docvlm.synth import generate

    out = []
    for i in range(n):
        synthetic = generate(kind, seed + i)
        doc = synthetic.open()
        schema = synthetic.schema_type
        fields = []
        for name, truth in synthetic.fields.items():
            annotation = schema.model_fields[name].annotation if schema is not None and name in schema.model_fields \
                else str
            kind_ = "num" if annotation in (float, int) else "str" if annotation in (str, str | None) else "other"
            if kind_ == "other":
                continue
            fields.append((FieldSpec(name, kind_), truth.value if kind_ == "num" else truth.text))
        out.append(Example(f"{kind}/{seed + i}", kind, f"{kind}/{i % 7}", candidates_of(list(doc)), fields))
    return out


def load(data: Path, sets: list[str], words: list[str], limit: int | None, n_synth: int) -> list[Example]:
    examples: list[Example] = []
    for name in sets:
        start = time.perf_counter()
        if name == "sroie":
            for w in words:
                examples += sroie_examples(data, w, limit)
        elif name == "funsd":
            for w in words:
                examples += funsd_examples(data, w, limit)
        else:
            examples += synth_examples(name, n_synth, seed=1000)
        print(f"  {name}: {sum(e.source == name for e in examples)} documents in {time.perf_counter() - start:.0f} s",
              flush=True)
    return examples


# training and evaluation ---------------------------------------------------------------------------------
def groups_of(examples: list[Example], negatives: int, seed: int) -> list[tuple[list[Any], list[bool]]]:
    """Training groups: each field's right spans and a sample of the wrong ones."""
    rng = np.random.default_rng(seed)
    out = []
    for ex in examples:
        for spec, truth in ex.fields:
            labels = [matches(spec, s.text, truth) for s in ex.candidates.spans]
            right = [i for i, y in enumerate(labels) if y]
            if not right:
                continue
            wrong = [i for i, y in enumerate(labels) if not y]
            if len(wrong) > negatives:
                wrong = list(rng.choice(wrong, negatives, replace=False))
            chosen = right + wrong
            out.append((ex.candidates.rows(spec, chosen), [labels[i] for i in chosen]))
    return out


def top1(ranker: Ranker, examples: list[Example]) -> dict[str, list[bool]]:
    """For each set/field, whether the top-ranked span is the value (fields whose value no span spells count as
    wrong: the ceiling is printed separately)."""
    out: dict[str, list[bool]] = defaultdict(list)
    for ex in examples:
        for spec, truth in ex.fields:
            scores = ranker.scores(ex.candidates.rows(spec))
            best = int(np.argmax(scores)) if len(scores) else -1
            ok = best >= 0 and matches(spec, ex.candidates.spans[best].text, truth)
            name = spec.name if ex.source != "funsd" else "question"
            out[f"{ex.source}/{name}"].append(ok)
    return out


def cross_validate(examples: list[Example], folds: int, negatives: int, seed: int = 0) -> dict[str, list[bool]]:
    groups = sorted({e.group for e in examples})
    rng = np.random.default_rng(seed)
    rng.shuffle(groups)
    fold_of = {g: i % folds for i, g in enumerate(groups)}
    results: dict[str, list[bool]] = defaultdict(list)
    for k in range(folds):
        train = [e for e in examples if fold_of[e.group] != k]
        test = [e for e in examples if fold_of[e.group] == k]
        ranker = fit(groups_of(train, negatives, seed + k))
        for name, oks in top1(ranker, test).items():
            results[name] += oks
    return results


def report(results: dict[str, list[bool]], title: str) -> dict[str, float]:
    by_set: dict[str, list[bool]] = defaultdict(list)
    for name, oks in results.items():
        by_set[name.split("/")[0]] += oks
    summary = {s: sum(v) / len(v) for s, v in by_set.items()}
    print(f"{title}: " + "  ".join(f"{s} {v:.3f}" for s, v in summary.items()))
    print("    " + "  ".join(f"{n} {sum(v) / len(v):.2f}" for n, v in sorted(results.items()) if not n.startswith("funsd")))
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--sets", default="sroie,funsd,invoice,form")
    ap.add_argument("--words", default="given,ocr", help="where realdev words come from: given, ocr or both")
    ap.add_argument("--limit", type=int, default=None, help="at most this many documents per realdev set")
    ap.add_argument("--synth", type=int, default=200, help="generated documents per synthetic set")
    ap.add_argument("--negatives", type=int, default=80, help="wrong spans sampled per field for training")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--ablate", action="store_true", help="cross-validate again without each feature family")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    sets = args.sets.split(",")
    words = args.words.split(",")
    print(f"training data: {', '.join(sets)}; realdev words: {', '.join(words)}", flush=True)
    examples = load(args.data, sets, words, args.limit, args.synth)
    figures: dict[str, Any] = {}
    if args.folds > 1:
        figures["cv"] = report(cross_validate(examples, args.folds, args.negatives), f"{args.folds}-fold CV top-1")
    if args.out is not None:
        start = time.perf_counter()
        ranker = fit(groups_of(examples, args.negatives, 0))
        ranker.info = {"sets": sets, "words": words, "synth": args.synth, "negatives": args.negatives,
                       "documents": len(examples), "figures": figures, "trained": time.strftime("%Y-%m-%d"),
                       "seconds": round(time.perf_counter() - start, 1)}
        ranker.save(args.out)
        print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) in {ranker.info['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
