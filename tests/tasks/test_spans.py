"""Candidate spans: the runs of printed text a value can be, and dates in every common written form."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest
from PIL import Image

import docvlm as dv
from docvlm.tasks._rank import DIM, Candidates, FieldSpec, Ranker, fit, fit_binary
from docvlm.tasks._spans import dates_in, page_spans
from docvlm.tasks.text import group_lines, segments_of


def receipt() -> dv.Document:
    buf = io.BytesIO()
    Image.new("L", (460, 400), 255).save(buf, format="PNG")
    return dv.open(buf.getvalue(), words={0: [
        ("AEON CO. (M) BHD (126926-H)", (90, 20, 370, 40)),
        ("3RD FLR, AEON TAMAN MALURI SC", (100, 44, 360, 60)),
        ("JLN JEJAKA, TAMAN MALURI", (120, 63, 340, 79)),
        ("CHERAS, 55100 KUALA LUMPUR", (110, 82, 350, 98)),
        ("GST ID : 002017394688", (120, 140, 340, 156)),
        ("12 MAR 2018 18:19", (20, 200, 180, 216)),
        ("TOTAL: RM 37.10", (20, 300, 200, 316)),
    ]})


@pytest.fixture(scope="module")
def spans() -> dict[tuple[str, str], dv.BoundingBox]:
    page = receipt()[0]
    lines = group_lines(segments_of(page.words().rows, 0))
    return {(s.kind, s.text): s.box for s in page_spans(lines)}


def test_a_value_is_offered_without_its_label_registration_number_or_time(spans: dict) -> None:
    texts = {t for _, t in spans}
    assert ("pre", "AEON CO. (M) BHD") in spans                  # without "(126926-H)"
    assert {"RM 37.10", "37.10"} <= texts and "TOTAL: RM" in texts  # without "TOTAL:", and the label part
    assert "12 MAR 2018" in texts                                # without the time
    assert ("suf", "002017394688") in spans
    assert len([t for _, t in spans if t == "37.10"]) == 1       # one span per text and words


def test_an_address_is_offered_whole_with_the_union_of_its_lines(spans: dict) -> None:
    text = "3RD FLR, AEON TAMAN MALURI SC JLN JEJAKA, TAMAN MALURI CHERAS, 55100 KUALA LUMPUR"
    [(kind, box)] = [(k, b) for (k, t), b in spans.items() if t == text]
    assert kind in ("block", "lines") and box.xyxy == pytest.approx((100, 44, 360, 98))
    # a line far below does not join the block: the gap is wider than the lines' height
    assert not any(k in ("block", "lines") and "GST" in t for k, t in spans)


@pytest.mark.parametrize(("text", "found"), [
    ("25/12/2018", [("25/12/2018", dt.date(2018, 12, 25))]),
    ("DATE: 23-01-2019 10:41", [("23-01-2019", dt.date(2019, 1, 23))]),
    ("18/03/18", [("18/03/18", dt.date(2018, 3, 18))]),
    ("12 MAR 2018 18:19", [("12 MAR 2018", dt.date(2018, 3, 12))]),
    ("August 3 , 2014", [("August 3 , 2014", dt.date(2014, 8, 3))]),
    ("March 8, 2026", [("March 8, 2026", dt.date(2026, 3, 8))]),
    ("15-May-25", [("15-May-25", dt.date(2025, 5, 15))]),
    ("2016-07-31 13:48:37", [("2016-07-31", dt.date(2016, 7, 31))]),
    ("07/23/2026", [("07/23/2026", dt.date(2026, 7, 23))]),  # month first where only that is valid
    ("14.03.2025", [("14.03.2025", dt.date(2025, 3, 14))]),
    (":05-03-201819:02:50", [("05-03-2018", dt.date(2018, 3, 5))]),  # OCR dropped the space before the time
    ("12 MAR 201809:15", [("12 MAR 2018", dt.date(2018, 3, 12))]),
    ("05-03-20181", []),  # a year glued to a digit that starts no time stays unread
    ("TOTAL 80.90", []), ("TEL 07-3523888", []), ("NO 122.124 JALAN", []), ("31/02/2020", []),
    # the languages invoices are often printed in, with their abbreviations and articles
    ("Date : 1er février 2014", [("1er février 2014", dt.date(2014, 2, 1))]),
    ("Rechnungsdatum 3. März 2014", [("3. März 2014", dt.date(2014, 3, 3))]),
    ("7 de mayo de 2014", [("7 de mayo de 2014", dt.date(2014, 5, 7))]),
    ("12 dic. 2013", [("12 dic. 2013", dt.date(2013, 12, 12))]),
    ("5 DEZ 2019", [("5 DEZ 2019", dt.date(2019, 12, 5))]),
    ("août 5, 2014", [("août 5, 2014", dt.date(2014, 8, 5))]),
    ("1ER FÉVRIER 2014", [("1ER FÉVRIER 2014", dt.date(2014, 2, 1))]),
    ("7 DE MAYO DEL 2014", [("7 DE MAYO DEL 2014", dt.date(2014, 5, 7))]),
    ("1 SET 12.00", []), ("2 OUT 15", []),  # English words, not Portuguese months: a receipt's item lines
    ("2 MARS 12.90", []), ("1 MAY 12.00", []),  # a two-digit "year" with decimals is a price
    ("29 augustus 2021", [("29 augustus 2021", dt.date(2021, 8, 29))]),  # Dutch
    ("7 de septiembre de 2020", [("7 de septiembre de 2020", dt.date(2020, 9, 7))]),  # a ten-letter month
])
def test_dates_in_every_common_form(text: str, found: list[tuple[str, dt.date]]) -> None:
    assert [(text[a:b], d) for a, b, d in dates_in(text)] == found


def test_every_month_the_invoice_generator_prints_is_read_as_a_date() -> None:
    """The month names of `docvlm.synth`'s six invoice languages (its own list, written apart from the parser's), in
    each written form the generator prints, read as the date they print, whole."""
    from docvlm.synth._vocab import MONTHS_IN
    from docvlm.synth.documents import _date

    for language in MONTHS_IN:
        for month in range(1, 13):
            day = dt.date(2021, month, 1 if month % 2 else 28)
            for style in ("long", "de_long", "es_long", "dmy_num", "eu_slash", "de_dot", "iso"):
                text = _date(day, style, language)
                assert [(text[a:b], d) for a, b, d in dates_in(text)] == [(text, day)], (language, style)


def test_fit_learns_which_feature_marks_the_value_and_the_ranker_round_trips(tmp_path) -> None:
    """Groups where the value is the candidate carrying feature 7 (among random distractor features): after
    training, held-out groups are ranked right, and a saved ranker scores the same after loading."""
    rng = np.random.default_rng(0)

    def group() -> tuple[list[np.ndarray], list[bool]]:
        rows = [rng.choice(np.arange(100, 200), 5, replace=False) for _ in range(8)]
        right = int(rng.integers(8))
        rows[right] = np.append(rows[right], 7)
        return [np.asarray(r, dtype=np.int64) for r in rows], [i == right for i in range(8)]

    ranker = fit([group() for _ in range(200)], epochs=10)
    held_out = [group() for _ in range(50)]
    assert all(np.argmax(ranker.scores(rows)) == labels.index(True) for rows, labels in held_out)
    ranker.save(tmp_path / "r.npz")
    again = Ranker.load(tmp_path / "r.npz")
    rows = held_out[0][0]
    assert np.allclose(again.scores(rows), ranker.scores(rows), atol=0.02)  # weights are stored as float16
    assert again.weights.shape == (DIM,)


def test_fit_binary_learns_a_separable_feature() -> None:
    rows = [np.asarray([i % 50 + 10, 3 if i % 2 else 4], dtype=np.int64) for i in range(400)]
    labels = [bool(i % 2) for i in range(400)]
    model = fit_binary(rows, labels)
    probs = model.probabilities(rows)
    assert (probs[1::2] > 0.9).all() and (probs[0::2] < 0.1).all()


def test_a_binary_model_is_calibrated_on_the_rows_it_is_read_with() -> None:
    """Rows that carry the bias already (`key_rows`, `link_rows`) are trained with it once: on a feature seen with
    and without the label, the probability read back is the share of rows that had the label (the key detector
    was trained with its bias twice and read with it once, so its probabilities were off by its bias)."""
    from docvlm.tasks._rank import with_bias

    rows = [np.asarray([7 if i % 4 == 0 else 8], dtype=np.int64) for i in range(800)]
    labels = [i % 8 == 0 or (i % 4 != 0 and i % 5 == 0) for i in range(800)]  # feature 7: 1/2 true, 8: 1/5 true
    for given in (rows, with_bias(rows)):
        probs = fit_binary(given, labels, steps=3000, lr=0.5, l2=0.0).probabilities(with_bias(rows))
        assert abs(float(probs[0]) - 0.5) < 0.02 and abs(float(probs[1]) - 0.2) < 0.02


def test_candidate_features_name_the_field_they_are_crossed_with() -> None:
    """The same span gets different rows for different fields (the field's words are crossed in), and a span's
    label that spells the field's name adds a similarity feature."""
    page = receipt()[0]
    cands = Candidates.build([(group_lines(segments_of(page.words().rows, 0)), page.width, page.height)])
    i = next(k for k, s in enumerate(cands.spans) if s.text == "37.10")
    total, date = cands.rows(FieldSpec("total"), [i])[0], cands.rows(FieldSpec("date"), [i])[0]
    assert len(set(total) ^ set(date)) > 20
    assert len(set(total) & set(date)) > 20  # the span's own features are shared


def test_training_groups_hold_the_spans_that_cut_a_value_short_or_run_it_on() -> None:
    """`bench.train_ranker.groups_of` samples wrong spans that share words with the value (the address a line short,
    or with the company's line above it) apart from the others, so the ranker learns a value's extent."""
    from bench.train_ranker import Example, groups_of

    page = receipt()[0]
    cands = Candidates.build([(group_lines(segments_of(page.words().rows, 0)), page.width, page.height)])
    address = "3RD FLR, AEON TAMAN MALURI SC JLN JEJAKA, TAMAN MALURI CHERAS, 55100 KUALA LUMPUR"
    example = Example("r", "sroie", "r", cands, fields=[(FieldSpec("address"), address)])
    value = next(s for s in cands.spans if s.text == address)
    sharing = [s for s in cands.spans if s.text != address and s.words & value.words]
    assert len(sharing) > 8  # each line, each pair of lines, the block with the company above...
    for hard, negatives in ((len(sharing), 0), (0, 5)):
        (rows, labels), = groups_of([example], negatives=negatives, seed=0, hard=hard)
        assert sum(labels) == 1 and len(rows) == len(labels)
        assert len(labels) == 1 + hard + negatives + 1  # the value, the wrong spans and "not printed"
    (rows, labels), = groups_of([example], negatives=0, seed=0, hard=len(sharing))
    assert sorted(map(tuple, rows[1:-1])) == sorted(map(tuple, cands.rows(FieldSpec("address"),
                                                                         [cands.spans.index(s) for s in sharing])))


def test_the_rankers_penalty_is_the_one_chosen_out_of_sample_and_holds_its_weights() -> None:
    """`bench.train_ranker.train` fits the value ranker with `RANKER_L2` (chosen with `bench.ranker_l2`) unless told
    otherwise, and a stronger penalty keeps its weights nearer zero."""
    import inspect

    from bench.train_ranker import RANKER_L2, Example, train

    page = receipt()[0]
    cands = Candidates.build([(group_lines(segments_of(page.words().rows, 0)), page.width, page.height)])
    example = Example("r", "sroie", "r", cands, fields=[(FieldSpec("total"), "RM 37.10"), (FieldSpec("date"), "12 MAR 2018")])
    assert inspect.signature(train).parameters["l2"].default == RANKER_L2
    weak, strong = (float(np.abs(train([example], 5, 0, l2=l2).ranker.weights).sum()) for l2 in (1e-6, 1e-1))
    assert 0 < strong < 0.5 * weak


def candidates_of(words: list[tuple[str, tuple[float, float, float, float]]]) -> Candidates:
    """The candidates of a blank 400 x 200 image with these words given (pixels)."""
    buf = io.BytesIO()
    Image.new("L", (400, 200), 255).save(buf, format="PNG")
    page = dv.open(buf.getvalue(), words={0: words})[0]
    return Candidates.build([(group_lines(segments_of(page.words().rows, 0)), page.width, page.height)])


def test_an_amount_that_is_a_multiple_of_five_cents_says_so_beside_its_rounding() -> None:
    """A total rounded to the coin (80.90 under 80.91 and "ROUNDING -0.01") is told from the unrounded one by a
    learned feature, not by which is lower on the page."""
    from docvlm.tasks._rank import span_features

    cands = candidates_of([("TOTAL", (10, 10, 60, 22)), ("80.91", (300, 10, 350, 22)), ("ROUNDING", (10, 30, 90, 42)),
                           ("-0.01", (300, 30, 350, 42)), ("TOTAL", (10, 50, 60, 62)), ("80.90", (300, 50, 350, 62))])
    feats = {s.text: set(span_features(s, c)) for s, c in zip(cands.spans, cands.contexts, strict=True)}
    assert {"c5:True", "rel:rounding-above|c5:True"} <= feats["80.90"]
    assert {"c5:False", "rel:rounding-below|c5:False"} <= feats["80.91"]


def test_an_amount_with_its_currency_after_it_is_an_amount() -> None:
    """"1 234,56 €" and "12.50 EUR" (French, German, Italian invoices) are amounts as "$1,234.56" and "RM 12.50" are;
    a price with a tax code after it ("12.50 SR") and a year with a dot ("2019.1") are not."""
    from docvlm.tasks._rank import span_features

    texts = ["1 234,56 €", "12.50 EUR", "$1,234.56", "€ 1.234,56", "12.50 SR", "2019.1"]
    cands = candidates_of([(t, (10, 10 + 25 * n, 10 + 9 * len(t), 22 + 25 * n)) for n, t in enumerate(texts)])
    amount = {s.text: "isamt" in span_features(s, c) for s, c in zip(cands.spans, cands.contexts, strict=True)
              if s.kind == "seg"}
    assert amount == {"1 234,56 €": True, "12.50 EUR": True, "$1,234.56": True, "€ 1.234,56": True,
                      "12.50 SR": False, "2019.1": False}


def test_the_key_detector_sees_what_is_right_of_a_span_and_the_column_under_it() -> None:
    """A column header over numbers ("NO. OF STORES" over 12, 15, 20) and a label with its value right of it are
    told from a span with nothing after it by what is printed beside and under them (`key_features`)."""
    from docvlm.tasks._rank import key_features, key_rows

    cands = candidates_of([("NO. OF STORES", (10, 10, 110, 22)), ("DATE:", (200, 10, 240, 22)),
                           ("4/12/89", (300, 10, 360, 22)), ("12", (40, 30, 60, 42)), ("15", (40, 50, 60, 62)),
                           ("20", (40, 70, 60, 82))])
    feats = {s.text: set(key_features(s, c)) for s, c in zip(cands.spans, cands.contexts, strict=True)
             if s.kind == "seg"}
    assert "kcolnum:3" in feats["NO. OF STORES"] and "krcolon" in feats["NO. OF STORES"]
    assert "krsh:9/9/9" in feats["DATE:"] and "kcolnum:0" in feats["DATE:"]
    assert "kr:none" in feats["4/12/89"] and "kr:none" in feats["20"]
    index = next(i for i, s in enumerate(cands.spans) if s.text == "NO. OF STORES" and s.kind == "seg")
    assert len(key_rows(cands, [index])[0]) > len(cands.base[index])  # the key features join the span's own


def test_a_span_cut_inside_brackets_or_at_a_comma_says_so() -> None:
    """A company name cut inside its bracketed registration note, an address that starts under a line ending with a
    comma (its first line left out) or that ends with one (its last line left out), lines that start with a bracketed
    note (a registration number over an address): shapes the ranker learns to weigh, marked on the span."""
    from docvlm.tasks._rank import span_features

    cands = candidates_of([("DION REALTIES SDN BHD (CO. NO. 1234-K)", (60, 10, 400, 26)),
                           ("(774288-V)", (150, 25, 250, 38)), ("NO 8, JALAN 7/118B,", (90, 40, 300, 56)), ("DESA TUN RAZAK,", (90, 60, 300, 76)),
                           ("56000 KUALA LUMPUR", (90, 80, 300, 96))])
    feats = {(s.kind, s.text): set(span_features(s, c)) for s, c in zip(cands.spans, cands.contexts, strict=True)}
    assert "unbal" in feats["pre", "DION REALTIES SDN BHD (CO."]
    assert "unbal" not in feats["seg", "DION REALTIES SDN BHD (CO. NO. 1234-K)"]
    assert "abcomma" in feats["seg", "DESA TUN RAZAK,"] and "endcomma" in feats["seg", "DESA TUN RAZAK,"]
    whole = feats["lines", "NO 8, JALAN 7/118B, DESA TUN RAZAK, 56000 KUALA LUMPUR"]
    assert "abcomma" not in whole and "endcomma" not in whole
    assert "endcomma" in feats["lines", "NO 8, JALAN 7/118B, DESA TUN RAZAK,"]
    assert "l0paren" in feats["lines", "(774288-V) NO 8, JALAN 7/118B, DESA TUN RAZAK, 56000 KUALA LUMPUR"]
    assert "l0paren" not in whole
