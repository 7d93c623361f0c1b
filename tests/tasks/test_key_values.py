"""dv.key_values: every printed key and the value printed with it, from the learned key detector and ranker."""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf
import pytest

import docvlm as dv
from docvlm.models import FunctionInfo, FunctionModel, Message

REALDEV = Path(__file__).resolve().parents[3] / "shared" / "realdev"


def form_pdf() -> bytes:
    """A form nobody trained on: labels left of values with colons, a label above its value, an empty field."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    lines = [
        (50, 60, "APPLICATION FOR MEMBERSHIP", 16),
        (50, 120, "Name:", 11), (160, 120, "Maria Rossi", 11),
        (330, 120, "Member No.:", 11), (430, 120, "M-48213", 11),
        (50, 150, "Date of birth:", 11), (160, 150, "04/11/1987", 11),
        (50, 180, "Phone:", 11), (160, 180, "+39 06 5551 2034", 11),
        (50, 210, "Fax:", 11),
        (50, 250, "Address", 9), (50, 264, "Via Roma 12, 00184 Rome", 11),
    ]
    for x, y, text, size in lines:
        page.insert_text((x, y), text, fontsize=size)
    return doc.tobytes()


def pairs(result: list[dv.KeyValue]) -> dict[str, str | None]:
    return {kv.key.quote: kv.value.quote if kv.value is not None else None for kv in result}


def test_keys_and_their_values_with_boxes_and_an_empty_field() -> None:
    page = dv.open(form_pdf())[0]
    result = dv.key_values(None, page)
    got = pairs(result)
    assert got["Name:"] == "Maria Rossi"
    assert got["Member No.:"] == "M-48213"
    assert got["Date of birth:"] == "04/11/1987"
    assert got["Phone:"] == "+39 06 5551 2034"
    assert got.get("Fax:", "missing") is None  # a key without a value
    name = next(kv for kv in result if kv.key.quote == "Name:")
    word = next(w for w in page.words() if w.text == "Maria")
    assert name.value is not None and name.value.box.x0 == pytest.approx(word.box.x0) and name.value.page == 0
    assert all(0.25 <= kv.confidence <= 1.0 for kv in result)  # the default threshold
    assert [kv.key.box.y0 for kv in result] == sorted(kv.key.box.y0 for kv in result)  # reading order


def test_a_model_chooses_each_keys_value_among_the_ranked_spans() -> None:
    page = dv.open(form_pdf())[0]
    offered: dict[str, tuple[str, ...]] = {}

    def model(messages: list[Message], info: FunctionInfo) -> dict[str, str | None]:
        import typing

        answer = {}
        for name, f in info.output_type.model_fields.items():
            options = [a for a in typing.get_args(f.annotation) if a is not type(None)]
            offered[name] = typing.get_args(options[0]) if options else ()
            answer[name] = offered[name][-1] if offered[name] else None  # always the last offered
        return answer

    result = dv.key_values(FunctionModel(model, supports_images=False), page, max_choices=3)
    assert offered and all(len(v) <= 3 for v in offered.values())
    for kv in result:  # the model's (odd) choices are what come back
        if kv.value is not None:
            assert any(kv.value.quote == options[-1] for options in offered.values())


@pytest.mark.skipif(not (REALDEV / "funsd").is_dir(), reason="needs ../shared/realdev")
def test_funsd_links_with_the_annotation_words() -> None:
    """Real forms (FUNSD). The shipped models were trained on realdev, so this guards against regressions; the
    out-of-sample figures come from `python -m bench.realdata --sets forms --cv 5`."""
    from bench.real_fields import squash
    from bench.train_ranker import funsd_links

    hit = predicted = truth_n = 0
    for file in sorted((REALDEV / "funsd" / "train" / "annotations").glob("*.json"))[60:80]:
        ann = json.loads(file.read_text())
        items = [(w["text"], w["box"]) for e in ann["form"] for w in e["words"] if w["text"].strip()]
        doc = dv.open(REALDEV / "funsd" / "train" / "images" / f"{file.stem}.png", words={0: items})
        got = {(squash(kv.key.quote), squash(kv.value.quote)) for kv in dv.key_values(None, doc[0]) if kv.value}
        truth = {(squash(q), squash(a)) for q, a in funsd_links(ann)}
        hit, predicted, truth_n = hit + len(got & truth), predicted + len(got), truth_n + len(truth)
    precision, recall = hit / predicted, hit / truth_n
    assert 2 * precision * recall / (precision + recall) >= 0.5


def test_pair_features_say_where_a_value_sits_from_its_key() -> None:
    """The value ranker of key_values sees each span's place from the key: right of it on its line, or under it,
    and how many starting points on that side are nearer."""
    from docvlm.tasks._rank import Candidates, FieldSpec
    from docvlm.tasks.text import document_segments, group_lines

    page = dv.open(form_pdf())[0]
    lines = group_lines(document_segments([page]))
    cands = Candidates.build([(lines, page.width, page.height)])
    index = {s.text: i for i, s in enumerate(cands.spans)}
    key = index["Name:"]
    got = cands._pair_features(key, [index[t] for t in ("Maria Rossi", "Date of birth:", "04/11/1987",
                                                           "Via Roma 12, 00184 Rome")])
    assert {"pr:right", "pr:rank:0"} <= set(got[0])  # the nearest start right of the key
    assert {"pr:below", "pr:rank:0", "pr:dx0:0"} <= set(got[1])  # the nearest start under it, aligned with it
    assert "pr:below" in got[2] and "pr:rank:0" not in got[2] and "pr:dx0:0" not in got[2]
    assert {"pr:below", "pr:dx0:0", "pr:rank:5"} <= set(got[3])  # aligned, but five or more starts nearer
    spec = FieldSpec("Name")
    plain, paired = cands.rows(spec, [index["Maria Rossi"]]), cands.rows(spec, [index["Maria Rossi"]], key=key)
    assert set(plain[0]) < set(paired[0])  # the pair features are added to the span's own
    cands.drop = frozenset({"pair"})
    assert set(cands.rows(spec, [index["Maria Rossi"]], key=key)[0]) == set(plain[0])  # and ablated as a family


def memo_pdf() -> bytes:
    """A memo nobody trained on: "cc:" over a list of three names, one value right of each other key."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    lines = [(50, 60, "MEMORANDUM", 16), (50, 110, "To:", 11), (120, 110, "Harold Becker", 11),
             (50, 135, "From:", 11), (120, 135, "Linda Moreau", 11), (50, 160, "Date:", 11), (120, 160, "March 3, 1994", 11),
             (50, 185, "cc:", 11), (120, 185, "Paul Ostrowski", 11), (120, 200, "Ann-Marie Voss", 11),
             (120, 215, "Thomas Greeley", 11),
             (50, 260, "The sampling schedule for the second quarter is attached.", 11)]
    for x, y, text, size in lines:
        page.insert_text((x, y), text, fontsize=size)
    return doc.tobytes()


def test_a_key_over_several_values_comes_once_for_each() -> None:
    """The link model reads "cc:"'s names as its values, the last one too: alone at the bottom of the list with
    nothing right of it, it was taken for a key by the key detector until the detector saw what is printed right of
    a span and under it (`key_features`); keys are never values."""
    result = dv.key_values(None, dv.open(memo_pdf())[0])
    values: dict[str, list[str | None]] = {}
    for kv in result:
        values.setdefault(kv.key.quote, []).append(kv.value.quote if kv.value is not None else None)
    assert values["cc:"] == ["Paul Ostrowski", "Ann-Marie Voss", "Thomas Greeley"]  # in reading order
    assert "Thomas Greeley" not in values
    strict = dv.key_values(None, dv.open(memo_pdf())[0], threshold=0.25)
    assert [kv.value.quote for kv in strict if kv.key.quote == "cc:" and kv.value is not None] == [
        "Paul Ostrowski", "Ann-Marie Voss", "Thomas Greeley"]
    assert values["To:"] == ["Harold Becker"] and values["Date:"] == ["March 3, 1994"]
    cc = [kv for kv in result if kv.key.quote == "cc:"]
    assert len({kv.key.box for kv in cc}) == 1 and all(0 < kv.confidence <= 1 for kv in cc)


def test_a_model_that_chooses_gives_one_value_per_key() -> None:
    """The link model reads several values only where no model chose them."""
    def model(messages: list[Message], info: FunctionInfo) -> dict[str, str | None]:
        import typing

        answer = {}
        for name, f in info.output_type.model_fields.items():
            options = [a for a in typing.get_args(f.annotation) if a is not type(None)]
            answer[name] = typing.get_args(options[0])[0] if options else None
        return answer

    result = dv.key_values(FunctionModel(model, supports_images=False), dv.open(memo_pdf())[0])
    keys = [kv.key.quote for kv in result]
    assert len(keys) == len(set(keys))


def test_the_link_model_learns_every_answer_of_a_key_and_reads_them_back() -> None:
    """`bench.train_ranker.link_data` labels all of a key's answers (not only one) and the spans that share words
    with them as wrong; a link model fitted on them reads every name under "cc:" back, each span to one key."""
    from bench.train_ranker import Example, link_data
    from docvlm.tasks._rank import fit_binary
    from docvlm.tasks.key_values import linked_values, page_candidates

    cands = page_candidates(dv.open(memo_pdf())[0])
    links = [("To:", "Harold Becker"), ("From:", "Linda Moreau"), ("Date:", "March 3, 1994"),
             ("cc:", "Paul Ostrowski"), ("cc:", "Ann-Marie Voss"), ("cc:", "Thomas Greeley")]
    example = Example("memo", "funsd", "memo", cands, keys=[k for k, _ in links], links=links)
    rows, labels = link_data([example], negatives=30, seed=0)
    assert sum(labels) >= 6 and len(labels) > sum(labels)  # each answer at least once, and wrong spans beside them
    key_of = {s.text: i for i, s in enumerate(cands.spans) if s.kind in ("seg", "line")}
    keys = [(key_of[k], 1.0) for k in ("To:", "From:", "Date:", "cc:")]
    values = linked_values(cands, keys, fit_binary(rows, labels), threshold=0.5)
    read = {cands.spans[ki].text: [cands.spans[v].text for v, _ in found]
            for (ki, _), found in zip(keys, values, strict=True)}
    assert sorted(read["cc:"]) == ["Ann-Marie Voss", "Paul Ostrowski", "Thomas Greeley"]
    assert read["To:"] == ["Harold Becker"] and read["Date:"] == ["March 3, 1994"]
    spans = [v for found in values for v, _ in found]
    assert len(spans) == len(set(spans))


def test_funsd_links_bench_says_why_each_true_link_was_not_read() -> None:
    """`bench.funsd_links.miss_reason` sorts a page's true links by what became of them with the given keys: read,
    a question no span spells, an answer no span spells, an answer far from its question."""
    import importlib

    from bench import train_ranker as tr
    from bench.funsd_links import MISSES, miss_reason
    from docvlm.tasks._rank import default_link_model
    from docvlm.tasks.key_values import page_candidates

    kv = importlib.import_module("docvlm.tasks.key_values")
    cands = page_candidates(dv.open(memo_pdf())[0])
    links = [("To:", "Harold Becker"), ("Subject:", "Budget"), ("From:", "Lionel Moreau"),
             ("To:", "The sampling schedule for the second quarter is attached.")]
    example = tr.Example("memo", "funsd", "memo", cands, keys=["To:", "From:", "Subject:"], links=links)
    key_of = {s.text: i for i, s in enumerate(cands.spans) if s.kind == "seg"}
    keys = [(key_of[k], 1.0) for k in ("To:", "From:", "Date:", "cc:")]
    values = kv.linked_values(cands, keys, default_link_model())
    got = {a: reason for (_, a), reason in miss_reason(kv, tr, example, keys, values, default_link_model()).items()}
    assert got[tr.squash("Harold Becker")] == "read"
    assert got[tr.squash("Budget")] == MISSES[0]  # "Subject:" is not printed
    assert got[tr.squash("Lionel Moreau")] == MISSES[1]  # "Linda Moreau" is printed
    assert got[tr.squash("The sampling schedule for the second quarter is attached.")] == MISSES[2]
