"""Receipts, forms and questions on real documents (``python -m bench.realdata --sets receipts,forms,questions``).

- ``receipts``: SROIE (``<data>/sroie``): company, date, address and total with ``dv.extract``, exact match (case and
  runs of whitespace ignored) and ANLS per field, with the dataset's own OCR line boxes passed in
  (``dv.open(image, words=...)``) and end to end with docvlm's OCR; the layout ranking alone (``model=None``) beside
  the model.
- ``forms``: FUNSD (``<data>/funsd/train``, or ``funsd/test`` when present): question -> answer links of
  ``dv.key_values``, precision / recall / F1 with texts compared without whitespace, end to end (docvlm's OCR) and
  with the annotation's words.
- ``invoices``: invoice2data's fields (issuer, number, date, amount, currency). Real invoices where the data folder
  has them (``<data>/invoices`` or ``<data>/invoice2data``: each ``X.pdf`` beside ``X.json``, invoice2data's
  expected output); else generated invoices of seeds the ranker never saw, born digital and scanned (realdev
  holds no invoices).
- ``questions``: the FUNSD questions that have one answer, asked as "What is the <question>?" with ``dv.ask``,
  ANLS; and ``docvlm ask`` on the demo invoice ("What is the total?").

The shipped ranker and key detector were trained on realdev (``python -m bench.train_ranker``). On realdev, pass
``--cv 5``: each document is then read with models trained without its group (its vendor, its form), so the
figures are out of sample; on the held-out set, the shipped models are used as they are.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import re
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from docvlm.eval.datasets import Invoice2DataFields
from docvlm.eval.metrics import anls_score


class Receipt(BaseModel):
    """The SROIE fields, as a user would write them."""

    company: str | None = None
    date: str | None = None
    address: str | None = None
    total: str | None = None


def collapse(text: Any) -> str:
    return re.sub(r"\s+", " ", str(text)).strip().upper()


def is_exact(value: Any, want: Any) -> bool:
    """A read value is the true one: printed, and the same text after collapsing whitespace and case."""
    return value is not None and collapse(value) == collapse(want)


def squash(text: Any) -> str:
    return re.sub(r"\s+", "", str(text)).upper()


class _Folds:
    """Models for each document: the shipped ones, or (``--cv K``) ones trained without the document's group."""

    def __init__(self, data: Path, cv: int) -> None:
        self.cv = cv
        self.models: dict[str, Any] = {}
        self.pair_models: dict[str, Any] = {}
        if cv <= 1:
            return
        from bench import train_ranker as tr

        # the shipped models' recipe (bench.train_ranker), each fold without the groups it is tested on
        examples = tr.load(data, ["sroie", "funsd"], ["given", "ocr"], None, 0)
        synth = tr.load(data, ["invoice", "form"], [], None, 200)
        fold = tr.fold_of(examples, cv)
        for k in range(cv):
            start = time.perf_counter()
            models = tr.train([e for e in examples if fold[e.group] != k] + synth, 80, k)
            for e in examples:
                if fold[e.group] == k:
                    self.models[e.id.rsplit("/", 1)[0]] = models
            print(f"  fold {k + 1}/{cv} trained in {time.perf_counter() - start:.0f} s", flush=True)
        # the pair model of each fold (bench.train_pairs): trained on the other folds' forms, whose pairs were read
        # with their own fold's key and link models (out of fold, as on a page never seen)
        from bench import train_pairs as tp

        start = time.perf_counter()
        forms = [e for e in examples if e.links]
        pages = {e.id: tp.page_pairs(e, self.models[e.id.rsplit("/", 1)[0]]) for e in forms}
        for k in range(cv):
            train = [pages[e.id] for e in forms if fold[e.group] != k]
            pair_model = tp.fit_pairs([p[2] for p in train], [p[3] for p in train], seed=k)
            for e in examples:
                if fold[e.group] == k:
                    self.pair_models[e.id.rsplit("/", 1)[0]] = pair_model
        print(f"  pair models of {cv} folds trained in {time.perf_counter() - start:.0f} s", flush=True)

    def get(self, key: str) -> tuple[Any, Any, Any, Any]:
        """(ranker, key model, link model, pair model) for a document id like ``sroie/003``; ``None`` each: the
        shipped ones."""
        models = self.models.get(key)
        if models is None:
            return None, None, None, None
        return models.ranker, models.keys, models.links, self.pair_models.get(key)


_FOLDS: dict[tuple[str, int], _Folds] = {}


def _folds(data: Path, cv: int) -> _Folds:
    """The fold models, trained once per run for every set that needs them."""
    key = (str(data.resolve()), cv)
    if key not in _FOLDS:
        _FOLDS[key] = _Folds(data, cv)
    return _FOLDS[key]


def _model(spec: str) -> Any:
    import docvlm as dv

    return dv.load_model(spec)


def receipts(data: Path, limit: int | None, model_spec: str, cv: int) -> dict[str, Any]:
    import docvlm as dv
    from bench.train_ranker import sroie_items
    from docvlm.tasks.extract import extract

    root = data / "sroie"
    keys = sorted((root / "key").glob("*.json"))[:limit]
    folds = _folds(data, cv)
    model = _model(model_spec)
    rows: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, float] = defaultdict(float)
    for key in keys:
        truth = json.loads(key.read_text())
        image = next((root / "img").glob(f"{key.stem}.*"))
        ranker, _, _, _ = folds.get(f"sroie/{key.stem}")
        for words in ("given", "ocr"):
            start = time.process_time()
            page = dv.open(image, words={0: sroie_items(root, key.stem)} if words == "given" else None)[0]
            page.words(ocr="auto")  # read once (OCR is cached per document), counted in every reader's time
            reading = time.process_time() - start
            for who, m in (("layout", None), (model_spec, model)):
                name = f"{who} ({'dataset OCR lines' if words == 'given' else 'docvlm OCR'})"
                start = time.process_time() - reading
                try:
                    got = extract(m, page, Receipt, ranker=ranker).value.model_dump()
                except dv.DocVLMError:
                    got = {}
                seconds[name] += time.process_time() - start
                row = rows.setdefault(name, defaultdict(list))
                for field, want in truth.items():
                    value = got.get(field)
                    row[f"{field} exact"].append(float(is_exact(value, want)))
                    row[f"{field} anls"].append(anls_score(str(value or ""), [want]))
    print(f"receipts: {len(keys)} SROIE receipts from {root}" + (f", {cv}-fold models (out of sample)" if cv > 1
                                                                   else ", shipped models"))
    fields = ("company", "date", "address", "total")
    print(f"  {'reader':42s} " + " ".join(f"{f:>8s}" for f in fields) + "   exact    ANLS   CPU s/page")
    out: dict[str, Any] = {}
    for name, row in rows.items():
        exact = [sum(row[f"{f} exact"]) / len(row[f"{f} exact"]) for f in fields]
        overall = sum(sum(row[f"{f} exact"]) for f in fields) / sum(len(row[f"{f} exact"]) for f in fields)
        anls = sum(sum(row[f"{f} anls"]) for f in fields) / sum(len(row[f"{f} anls"]) for f in fields)
        per_page = seconds[name] / max(1, len(keys))
        print(f"  {name:42s} " + " ".join(f"{v:8.3f}" for v in exact) + f"  {overall:6.3f}  {anls:6.3f}  {per_page:8.2f}")
        out[name] = {"fields": dict(zip(fields, exact, strict=True)), "exact": overall, "anls": anls,
                     "cpu_seconds_per_page": per_page}
    return out


def _funsd_root(data: Path) -> Path:
    for sub in ("funsd/test", "funsd/testing_data", "funsd/train", "funsd/training_data", "funsd"):
        if (data / sub / "annotations").is_dir():
            return data / sub
    raise SystemExit(f"bench.realdata: no FUNSD annotations under {data}/funsd")


def forms(data: Path, limit: int | None, model_spec: str, cv: int) -> dict[str, Any]:
    import docvlm as dv
    from bench.train_ranker import funsd_links
    from docvlm.tasks.key_values import key_values

    root = _funsd_root(data)
    files = sorted((root / "annotations").glob("*.json"))[:limit]
    folds = _folds(data, cv)
    counts: dict[str, list[int]] = {}
    seconds: dict[str, float] = defaultdict(float)
    for file in files:
        ann = json.loads(file.read_text())
        image = root / "images" / f"{file.stem}.png"
        truth = {(squash(q), squash(a)) for q, a in funsd_links(ann)}
        ranker, key_model, link_model, pair_model = folds.get(f"funsd/{file.stem}")
        for words in ("given", "ocr"):
            name = f"layout ({'annotation words' if words == 'given' else 'docvlm OCR'})"
            items = [(w["text"], w["box"]) for e in ann["form"] for w in e.get("words", []) if w["text"].strip()]
            start = time.process_time()
            doc = dv.open(image, words={0: items} if words == "given" else None)
            pairs = key_values(None, doc[0], ranker=ranker, key_model=key_model, link_model=link_model,
                               pair_model=pair_model)
            seconds[name] += time.process_time() - start
            predicted = {(squash(kv.key.quote), squash(kv.value.quote)) for kv in pairs if kv.value is not None}
            c = counts.setdefault(name, [0, 0, 0])
            c[0] += len(predicted & truth)
            c[1] += len(predicted)
            c[2] += len(truth)
    print(f"forms: {len(files)} FUNSD forms from {root}, question -> answer links, texts without whitespace"
          + (f", {cv}-fold models" if cv > 1 else ", shipped models"))
    out: dict[str, Any] = {}
    for name, (hit, npred, ntrue) in counts.items():
        p, r = hit / max(1, npred), hit / max(1, ntrue)
        f1 = 2 * p * r / max(1e-9, p + r)
        print(f"  {name:32s} precision {p:.3f}  recall {r:.3f}  F1 {f1:.3f}   CPU {seconds[name] / len(files):.2f} s/page")
        out[name] = {"precision": p, "recall": r, "f1": f1, "cpu_seconds_per_page": seconds[name] / len(files)}
    return out


def questions(data: Path, limit: int | None, model_spec: str, cv: int) -> dict[str, Any]:
    import docvlm as dv
    from bench.train_ranker import funsd_pairs
    from docvlm.tasks.ask import ask

    ask_module = importlib.import_module("docvlm.tasks.ask")  # the module (docvlm.tasks exports the function)
    root = _funsd_root(data)
    files = sorted((root / "annotations").glob("*.json"))[:limit]
    folds = _folds(data, cv)
    scores: dict[str, list[float]] = defaultdict(list)
    for file in files:
        ann = json.loads(file.read_text())
        image = root / "images" / f"{file.stem}.png"
        ranker, _, link_model, _ = folds.get(f"funsd/{file.stem}")
        doc = dv.open(image)
        for question, answer in funsd_pairs(ann):
            if answer is None:
                continue
            for name, use_key in (("layout (docvlm OCR)", True), ("  without the printed key", False)):
                ask_module._USE_KEY = use_key  # the ablation: rank values without where they sit from the key
                got = ask(None, doc, f"What is the {question.rstrip(': ')}?", ranker=ranker, link_model=link_model)
                scores[name].append(anls_score(got.text, [answer]))
            ask_module._USE_KEY = True
    demo = dv.open(dv.samples.invoice_pdf())
    total = ask(None, demo, "What is the total?")
    print(f"questions: FUNSD questions asked as 'What is the <question>?' on {len(files)} forms, ANLS")
    out: dict[str, Any] = {}
    for name, vals in scores.items():
        print(f"  {name:32s} ANLS {sum(vals) / max(1, len(vals)):.3f} over {len(vals)} questions")
        out[name] = sum(vals) / max(1, len(vals))
    print(f"  demo invoice 'What is the total?': {total.text!r}")
    out["demo_total"] = total.text
    return out


def _line_cer(words: list[tuple[float, float, float, float, str]], lines: list[tuple[str, list[float]]]) -> tuple[int, int]:
    """Edit distance and length of each truth line against the OCR words whose centres fall in its box."""
    from docvlm.eval.metrics import levenshtein

    dist = total = 0
    for text, quad in lines:
        xs, ys = quad[0::2], quad[1::2]
        x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        pad = 0.3 * (y1 - y0)
        inside = sorted((w for w in words if x0 - pad <= (w[0] + w[2]) / 2 <= x1 + pad
                         and y0 - pad <= (w[1] + w[3]) / 2 <= y1 + pad), key=lambda w: w[0])
        want = collapse(text)
        dist += levenshtein(" ".join(w[4] for w in inside).upper(), want)
        total += len(want)
    return dist, total


def ocr(data: Path, limit: int | None) -> dict[str, Any]:
    """OCR engines and settings against SROIE's line truth: character error rate of each truth line against the
    words read inside its box, and CPU seconds per receipt (tesseract's own process included)."""
    import os
    import resource

    import numpy as np

    import docvlm as dv
    from bench.train_ranker import sroie_items
    from docvlm.documents import ocr as ocr_module

    root = data / "sroie"
    keys = sorted((root / "key").glob("*.json"))[:limit]

    def cpu() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def rapid(settings: dict[str, Any]) -> Any:
        import rapidocr

        threads = int(os.environ.get("OMP_THREAD_LIMIT", "1"))
        engine = rapidocr.RapidOCR(params={"Global.log_level": "error", **settings,
                                           "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                                           "EngineConfig.onnxruntime.inter_op_num_threads": threads})

        def read(page: Any) -> list[tuple[float, float, float, float, str]]:
            result = engine(np.asarray(page.render().image.convert("RGB")))
            if result.boxes is None:
                return []
            rows, _ = ocr_module.split_lines([[(float(x), float(y)) for x, y in q] for q in result.boxes],
                                             [str(t) for t in result.txts], [float(v) for v in result.scores])
            return [r[:5] for r in rows]
        return read

    def tess(scale: float, psm: int) -> Any:
        def read(page: Any) -> list[tuple[float, float, float, float, str]]:
            try:
                image = page.render(page.default_dpi * scale)
            except dv.PageTooLargeError:  # a big photo upscaled: as large as the pixel budget allows
                image = page.render()
            s = image.width / page.width
            rows, _ = ocr_module._run_tesseract_psm(image, "eng", 120.0, psm)
            return [(x0 / s, y0 / s, x1 / s, y1 / s, t) for x0, y0, x1, y1, t, *_ in rows]
        return read

    readers: dict[str, Any] = {}
    if ocr_module._tesseract_path() is not None:
        readers |= {"tesseract psm 3": tess(1.0, 3), "tesseract psm 3, 2x upscaled": tess(2.0, 3),
                    "tesseract psm 4 (one column)": tess(1.0, 4), "tesseract psm 6 (one block)": tess(1.0, 6)}
    if ocr_module._rapidocr_importable():
        readers |= {"rapidocr, its defaults": rapid({}),
                    "rapidocr, docvlm's settings": rapid(ocr_module.RAPIDOCR_SETTINGS)}
    print(f"ocr: {len(keys)} SROIE receipts, CER of each truth line against the words read in its box")
    out: dict[str, Any] = {}
    for name, read in readers.items():
        dist = total = 0
        start = cpu()
        for key in keys:
            page = dv.open(next((root / "img").glob(f"{key.stem}.*")))[0]
            d, t = _line_cer(read(page), sroie_items(root, key.stem))
            dist += d
            total += t
        seconds = (cpu() - start) / max(1, len(keys))
        print(f"  {name:34s} CER {dist / max(1, total):.3f}   CPU {seconds:.2f} s/receipt", flush=True)
        out[name] = {"cer": dist / max(1, total), "cpu_seconds_per_page": seconds}
    return out


class InvoiceFields(BaseModel):
    """invoice2data's fields, as a user would write them."""

    issuer: str | None = None
    invoice_number: str | None = None
    date: str | None = None
    amount: float | None = None
    currency: Literal["USD", "EUR", "GBP", "CHF", "JPY", "INR"] | None = None


INVOICE_FIELDS = tuple(Invoice2DataFields.model_fields)


def invoice_samples(data: Path) -> list[Any]:
    """The real invoices of a data folder: ``<data>/invoices`` and ``<data>/invoice2data`` read by
    ``dv.load_dataset(..., "invoice2data")`` (each PDF or image beside invoice2data's JSON of the same stem); none
    when neither folder holds one."""
    from docvlm.errors import DatasetError
    from docvlm.eval.datasets import load_dataset

    out: list[Any] = []
    for name in ("invoices", "invoice2data"):
        if not (data / name).is_dir():
            continue
        try:
            dataset = load_dataset(data / name, "invoice2data")
        except DatasetError as exc:
            print(f"  {exc}", flush=True)
            continue
        for skipped in dataset.skipped:
            print(f"  not scored: {skipped.file} ({skipped.record}): {skipped.reason}", flush=True)
        out += dataset.samples
    return out


def invoice_truth(sample: Any) -> dict[str, Any]:
    """A sample's true fields, typed as `Invoice2DataFields` reads them (the date a `datetime.date`)."""
    return {f.name: dt.date.fromisoformat(str(f.value)) if f.name == "date" else f.value for f in sample.fields}


def invoice_hit(name: str, got: Any, want: Any) -> bool:
    """One field read right: the amount to the cent, the date as a date, the currency as its code, texts without
    whitespace and case."""
    if got is None:
        return False
    if name == "amount":
        return abs(float(got) - float(want)) < 0.005
    if name == "date":
        return bool(got == want)
    return squash(got) == squash(want)


def real_invoices(samples: list[Any], model_spec: str) -> dict[str, Any]:
    """invoice2data's fields on real invoices: ``dv.extract`` of the fields of `Invoice2DataFields` each invoice's
    truth gives (``sample.schema_type()``, as ``docvlm eval --format invoice2data`` reads them), every page; the
    layout ranking alone beside the model."""
    import docvlm as dv
    from docvlm.tasks.extract import extract

    model = _model(model_spec)
    hits: dict[str, dict[str, list[bool]]] = {}
    seconds: dict[str, float] = defaultdict(float)
    pages = 0
    failed: dict[str, int] = defaultdict(int)
    for sample in samples:
        truth = invoice_truth(sample)
        schema = sample.schema_type()  # the fields the truth gives, built once for both readers
        try:
            doc = sample.open()
            start = time.process_time()
            for page in doc:
                page.words(ocr="auto")  # read once, counted in every reader's time
                pages += 1
            reading = time.process_time() - start
        except dv.DocVLMError as exc:
            print(f"  {sample.document}: {exc}", flush=True)
            doc, reading = None, 0.0
        for who, m in (("layout", None), (model_spec, model)):
            start = time.process_time() - reading
            got: dict[str, Any] = {}
            if doc is not None:
                try:
                    got = extract(m, doc, schema).value.model_dump()
                except dv.DocVLMError:
                    failed[who] += 1
            seconds[who] += time.process_time() - start
            for name, want in truth.items():
                hits.setdefault(who, defaultdict(list))[name].append(invoice_hit(name, got.get(name), want))
    print(f"invoices: {len(samples)} REAL invoices ({pages} pages), invoice2data's fields against each invoice's JSON")
    print(f"  {'reader':20s} " + " ".join(f"{f:>14s}" for f in INVOICE_FIELDS) + "   all   CPU s/page")
    out: dict[str, Any] = {"real": True, "documents": len(samples)}
    for who, row in hits.items():
        per = {f: sum(row[f]) / len(row[f]) for f in INVOICE_FIELDS if row.get(f)}
        overall = sum(sum(v) for v in row.values()) / max(1, sum(len(v) for v in row.values()))
        cells = " ".join(f"{per[f]:14.3f}" if f in per else f"{'-':>14s}" for f in INVOICE_FIELDS)
        print(f"  {who:20s} {cells}  {overall:.3f}  {seconds[who] / max(1, pages):8.2f}"
              + (f"   ({failed[who]} failed)" if failed[who] else ""))
        out[who] = {"fields": per, "exact": overall, "fields_scored": sum(len(v) for v in row.values())}
    return out


def invoices(data: Path, limit: int | None, model_spec: str) -> dict[str, Any]:
    """invoice2data's fields: on the data folder's real invoices (`invoice_samples`) when it has them, else on
    generated ones (`generated_invoices`)."""
    samples = invoice_samples(data)
    if samples:
        return real_invoices(samples[:limit], model_spec)
    return generated_invoices(limit, model_spec)


def generated_invoices(limit: int | None, model_spec: str) -> dict[str, Any]:
    """invoice2data's fields (`Invoice2DataFields`, as the real invoices are read) on generated invoices of seeds the
    ranker never saw (realdev has no invoices; the held-out set has real ones), born digital and scanned; half of
    them English, the others French, German, Spanish, Italian or Dutch (`docvlm.synth.invoice_language`), each
    language's share printed apart."""
    import docvlm as dv
    from docvlm.eval.datasets import Invoice2DataFields
    from docvlm.synth import generate_invoice
    from docvlm.synth.scan import scan
    from docvlm.tasks.extract import extract

    n = limit or 40
    model = _model(model_spec)
    truth_of = {"issuer": "vendor_name", "invoice_number": "invoice_number", "date": "invoice_date", "amount": "total",
                "currency": "currency"}
    hits: dict[str, dict[str, list[bool]]] = {}
    by_language: dict[tuple[str, str], list[bool]] = defaultdict(list)
    counts: Counter[str] = Counter()
    seconds: dict[str, float] = defaultdict(float)
    for seed in range(5000, 5000 + n):
        synthetic = generate_invoice(seed)
        counts[synthetic.language] += 1
        for path in ("born-digital", "scanned"):
            doc = synthetic.open() if path == "born-digital" else dv.open(scan(synthetic, dpi=200, seed=seed).image_bytes)
            start = time.process_time()
            for page in doc:
                page.words(ocr="auto")  # read once (OCR is cached per document), counted in every reader's time
            reading = time.process_time() - start
            for who, m in (("layout", None), (model_spec, model)):
                name = f"{who} ({path})"
                start = time.process_time() - reading
                try:
                    got = extract(m, doc, Invoice2DataFields).value.model_dump()
                except dv.DocVLMError:
                    got = {}
                seconds[name] += time.process_time() - start
                for field, key in truth_of.items():
                    truth = synthetic.fields[key]
                    value = got.get(field)
                    if field == "amount":
                        ok = value is not None and abs(float(value) - float(truth.value)) < 0.005
                    elif field in ("currency", "date"):
                        want = truth.value if field == "currency" else truth.normalized
                        ok = value is not None and str(value) == want
                    else:
                        ok = value is not None and collapse(value) == collapse(truth.text)
                    hits.setdefault(name, defaultdict(list))[field].append(ok)
                    by_language[(name, synthetic.language)].append(ok)
    languages = sorted({lang for _, lang in by_language}, key=lambda lang: (lang != "en", lang))
    print(f"invoices: {n} GENERATED invoices (seeds 5000+, never trained on), invoice2data's fields, born digital "
          "and scanned (OCR); " + ", ".join(f"{counts[lang]} {lang}" for lang in languages))
    fields = list(truth_of)
    print(f"  {'reader':28s} " + " ".join(f"{f:>14s}" for f in fields) + "   all   CPU s/page")
    out: dict[str, Any] = {}
    for name, row in hits.items():
        per = [sum(row[f]) / len(row[f]) for f in fields]
        overall = sum(sum(row[f]) for f in fields) / sum(len(row[f]) for f in fields)
        print(f"  {name:28s} " + " ".join(f"{v:14.3f}" for v in per) + f"  {overall:.3f}  {seconds[name] / n:8.2f}")
        out[name] = {"fields": dict(zip(fields, per, strict=True)), "exact": overall}
    print("  by language (all fields)     " + " ".join(f"{lang:>7s}" for lang in languages))
    for name in hits:
        shares = {lang: sum(by_language[(name, lang)]) / len(by_language[(name, lang)]) for lang in languages}
        print(f"  {name:28s} " + " ".join(f"{shares[lang]:7.3f}" for lang in languages))
        out[name]["languages"] = shares
    return out


def run(name: str, data: Path, *, limit: int | None, model_spec: str, cv: int = 0) -> dict[str, Any]:
    if name == "receipts":
        return receipts(data, limit, model_spec, cv)
    if name == "forms":
        return forms(data, limit, model_spec, cv)
    if name == "ocr":
        return ocr(data, limit)
    if name == "invoices":
        return invoices(data, limit, model_spec)
    return questions(data, limit, model_spec, cv)
