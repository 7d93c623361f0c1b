"""Key-value pairs: ``dv.key_values(model_or_None, page)``, the generic form reading (every printed key with the
value printed with it) that docling, Textract and Azure offer.

1. Every span that could be a key (a label, a form's question) is scored by a learned key detector
   (`docvlm.tasks._rank.default_key_model`, trained on FUNSD forms and generated documents); the likely
   keys are kept, best first, never two over the same words.
2. Each key is then a field named by its own text: the value ranker of [`docvlm.extract`][docvlm.extract] ranks the spans
   that are not keys, and "not filled in" beside them, with features of where each span sits from the key (right of
   it or under it, how far, how many starting points are nearer: `docvlm.tasks._rank.pair_features`, learned on
   FUNSD's links). A value goes to the key that ranks it best; keys that are another key's value are dropped.
3. The values are then read by the pair model (`docvlm.tasks._pairs`, gradient-boosted trees trained on every
   FUNSD link): each (key, span) pair of the page is scored with dense measures of where the span sits from the key
   (right of it or under it, how far, how many starting points and other keys are nearer), what both look like, the
   key detector's probability of each and the link model's log-odds of the pair (`docvlm.tasks._rank.default_link_model`:
   the same features as the ranker's, each span scored alone as one of the key's values). The keys are the likely
   ones and every other span the detector gives at least a little (`docvlm.tasks._pairs.POOL_THRESHOLD`), so a key
   the detector alone would miss is read when its value is clear. Pairs are taken best first: a key can have several
   values (a column header over its cells, "cc:" over a list of names, an answer printed over several lines), a
   value's words go to one key, a key's words are never a value. A text-only model that scores weighs in on each
   key's likeliest values as in [`docvlm.extract`][docvlm.extract] (the same field prompt, its `choice_weight`; 0:
   not asked). ``pairs=False`` reads the detected keys' values by the link model alone (the reading before the
   pair model).
4. Other models (a vision model, a model that only generates) choose every key's one value (or none) among the
   best-ranked spans in one constrained answer.

Keys and values are [`Citation`][docvlm.types.Citation] s: their text as printed and their box in page space.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ConfigDict, Field, create_model

from docvlm.models.base import Model
from docvlm.tasks._page import PageInput, as_page
from docvlm.tasks._pairs import default_pair_model, pair_table, read_pairs
from docvlm.tasks._rank import (
    MAX_KEY_CHARS,
    Candidates,
    FieldSpec,
    Ranker,
    default_key_model,
    default_link_model,
    default_ranker,
    key_rows,
    link_rows,
)
from docvlm.tasks._spans import Span
from docvlm.tasks._trees import Trees
from docvlm.tasks.extract import optional_choice
from docvlm.types.answer import Citation, KeyValue

__all__ = ["KEY_KINDS", "KEY_THRESHOLD", "LINK_THRESHOLD", "PAIR_THRESHOLD", "joint_read", "joint_values", "key_values", "link",
           "linked_values", "page_candidates"]

#: The kinds of span that can be a key: a segment, its head before a value, a line, a block of lines.
KEY_KINDS = ("seg", "pre", "line", "block", "lines")


def page_candidates(page: Any) -> Candidates:
    """The candidate spans of one page (its words: text layer, OCR or given words)."""
    return Candidates.of_pages([page])[0]


#: How likely (0..1) a span must be one of a key's values for the link model to report it (`key_values`).
LINK_THRESHOLD = 0.4
#: How likely (0..1) a span must be a key to be reported (`key_values`): FUNSD links on realdev forms, 5-fold models,
#: `bench.realdata --sets forms`: 0.2 reads 0.448 with the annotation's words, 0.325 with OCR, against 0.441 / 0.323 at
#: 0.25 (the key detector's probabilities were inflated by its bias until it was trained with it once; 0.25 then
#: stood near a calibrated 0.2).
KEY_THRESHOLD = 0.2
#: How likely (0..1) the pair model must find a (key, value) pair for `key_values` to report it.
PAIR_THRESHOLD = 0.15


def key_values(model: Model | None, page: PageInput, *, threshold: float = KEY_THRESHOLD, max_choices: int = 5,
               key_model: Ranker | None = None, ranker: Ranker | None = None, none_margin: float = 0.0,
               link_model: Ranker | None = None, link_threshold: float = LINK_THRESHOLD, pairs: bool = True,
               pair_model: Trees | None = None, pair_threshold: float = PAIR_THRESHOLD) -> list[KeyValue]:
    """The page's printed keys and the values printed with each: one pair per value, so a key with several values
    (a column header over its cells) comes once for each, and a key without one once, its value ``None``.

    Args:
        model: ``None`` for the learned layout reading alone; a model chooses each key's value among the best
            ``max_choices`` spans.
        page: a page, or a document's first page.
        threshold: how likely (0..1) a span must be a key to be reported (`KEY_THRESHOLD`).
        none_margin: how much more likely than the best span "no value" must be for a key to have no value.
        key_model: the key detector (default: the one shipped with docvlm).
        ranker: the value ranker (default: the one shipped with docvlm).
        link_model: the link model that reads each key's values when no model chooses them (default: the one
            shipped with docvlm).
        link_threshold: how likely (0..1) a span must be one of a key's values to be reported (0.4: FUNSD links on
            realdev forms, 5-fold models, `bench.train_ranker`); with ``pairs=False``.
        pairs: read keys and values jointly with the pair model (`docvlm.tasks._pairs`: every likely key's pairs
            scored together, best first), also for a key the detector alone would not report; ``False``: the
            detected keys' values by the link model alone, as before the pair model.
        pair_model: the pair model (default: the one shipped with docvlm).
        pair_threshold: how likely (0..1) a pair must be to be reported (`PAIR_THRESHOLD`).

    Returns:
        Key-value pairs in reading order of their keys, then of their values; ``confidence`` is the pair's
        probability where the pair model read it, the key's for a key without a value, and the key's times the
        value's with ``pairs=False``.
    """
    cands = page_candidates(as_page(page))
    scorer = model is not None and model.supports_scoring and not model.supports_images
    chooser = model if model is not None and not scorer else None
    joint = chooser is None and pairs  # a pair's probability is the pair's, its key's included
    with cands.caching():  # each key's similarity to every span, computed once for all the models that read it
        keys, picks = link(cands, key_model or default_key_model(), ranker or default_ranker(), threshold=threshold,
                           model=chooser, max_choices=max_choices, none_margin=none_margin)
        if chooser is not None:  # the model chose one value per key
            values: list[list[tuple[int, float]]] = [[(p, 1.0)] if p is not None else [] for p in picks]
        elif pairs:
            keys, values = joint_values(cands, keys, key_model or default_key_model(),
                                        link_model or default_link_model(), pair_model or default_pair_model(),
                                        threshold=pair_threshold, model=model, max_choices=max_choices)
        else:
            values = linked_values(cands, keys, link_model or default_link_model(), threshold=link_threshold,
                                   model=model, max_choices=max_choices)
    out = []
    for (ki, prob), found in zip(keys, values, strict=True):
        key = cands.spans[ki]
        cite = Citation(page=key.page, box=key.box, quote=key.text)
        if not found:
            out.append(KeyValue(key=cite, value=None, confidence=round(prob, 4)))
        for vi, p in found:
            value = cands.spans[vi]
            out.append(KeyValue(key=cite, value=Citation(page=value.page, box=value.box, quote=value.text),
                                confidence=round(p if joint else prob * p, 4)))
    out.sort(key=lambda kv: (kv.key.page, kv.key.box.y0, kv.key.box.x0, kv.value.page if kv.value else 0,
                             kv.value.box.y0 if kv.value else 0.0, kv.value.box.x0 if kv.value else 0.0))
    return out


def joint_values(cands: Candidates, keys: Sequence[tuple[int, float]], key_model: Ranker, link_model: Ranker,
                 pair_model: Trees, *, threshold: float = PAIR_THRESHOLD, model: Model | None = None,
                 max_choices: int = 5) -> tuple[list[tuple[int, float]], list[list[tuple[int, float]]]]:
    """The keys and each key's values (span index, probability) as the pair model reads them (`docvlm.tasks._pairs`):
    the pairs of the detected ``keys`` and of every other likely key, best first. Keys that read a value come with the
    pair's probability; a detected key that reads none stays, without values, unless its words became a value or part
    of another key. A text-only model that scores weighs in on each detected key's likeliest values as in
    `linked_values`."""
    import numpy as np

    table_pairs, table = pair_table(cands, keys, key_model, link_model, _near, KEY_KINDS)
    probs = pair_model.probabilities(table) if len(table) else np.zeros(0)
    if model is not None and len(table):
        for ki, _ in keys:
            at = [n for n, (k, _) in enumerate(table_pairs) if k == ki]
            if at and probs[at].max() >= threshold:
                probs[at] = _weighed(model, cands, cands.spans[ki].text.rstrip(": "), [table_pairs[n][1] for n in at],
                                     probs[at], max_choices)
    return joint_read(cands, keys, table_pairs, probs, threshold)


def joint_read(cands: Candidates, keys: Sequence[tuple[int, float]], table_pairs: Sequence[tuple[int, int]], probs: Any,
               threshold: float) -> tuple[list[tuple[int, float]], list[list[tuple[int, float]]]]:
    """`joint_values`' keys and values from the pair model's probabilities of a page's pairs (`pair_table`)."""
    read = read_pairs(cands, table_pairs, probs, threshold)
    words = [s.words for s in cands.spans]
    used = set().union(*(words[v] for found in read.values() for v, _ in found), *(words[k] for k in read))
    out_keys: list[tuple[int, float]] = []
    out_values: list[list[tuple[int, float]]] = []
    for ki, prob in keys:
        if ki in read:
            out_keys.append((ki, prob))
            out_values.append(read.pop(ki))
        elif not words[ki] & used:
            out_keys.append((ki, prob))
            out_values.append([])
    for ki, found in read.items():  # keys the detector alone would not have reported
        out_keys.append((ki, max(p for _, p in found)))
        out_values.append(found)
    return out_keys, out_values


def linked_values(cands: Candidates, keys: Sequence[tuple[int, float]], link_model: Ranker, *,
                  threshold: float = LINK_THRESHOLD, model: Model | None = None,
                  max_choices: int = 5) -> list[list[tuple[int, float]]]:
    """Each key's values (span index, probability) as the link model reads them: the spans near a key (`_near`)
    that are not keys are scored as its values; every span at least ``threshold`` likely goes, most likely first,
    to the key it is most likely a value of, unless its words went to a value already.

    A text-only model that scores weighs in as in [`docvlm.extract`][docvlm.extract]: where the link model reads a
    value, the key's ``max_choices`` likeliest spans are asked with extraction's field prompt (the key's text as the
    field), each span's log-odds moves by ``weight x (log-probability - the best log-probability)`` (the model's
    `Model.choice_weight`, else ``LM_WEIGHT``; 0: the model is not asked), and the model's choice takes the best
    probability. Whether a key has a value at all stays the link model's call.

    The keys are `link`'s: letting the link model also decide that a key is another key's value (a name in a list
    under "cc:" that the key detector took for a key) was measured and lost (FUNSD links, 5-fold models: F1 0.452
    -> 0.444 with the annotation's words, 0.310 -> 0.304 with docvlm's OCR; with a margin of 0.3-0.5 still no gain)."""
    words = [s.words for s in cands.spans]
    boxes = [s.box for s in cands.spans]
    key_words = set().union(*(words[ki] for ki, _ in keys)) if keys else set()
    scored: list[tuple[float, int, int]] = []
    for n, (ki, _) in enumerate(keys):
        near = [i for i in _near(cands.spans[ki], boxes) if not words[i] & key_words]
        if not near:
            continue
        probs = link_model.probabilities(link_rows(cands, ki, near))
        if model is not None and max(probs) >= threshold:
            probs = _weighed(model, cands, cands.spans[ki].text.rstrip(": "), near, probs, max_choices)
        scored += [(float(p), n, i) for p, i in zip(probs, near, strict=True) if p >= threshold]
    out: list[list[tuple[int, float]]] = [[] for _ in keys]
    taken: set[tuple[int, int]] = set()
    for p, n, i in sorted(scored, key=lambda t: -t[0]):
        if not words[i] & taken:
            out[n].append((i, p))
            taken |= words[i]
    return out


def link(cands: Candidates, key_model: Ranker, ranker: Ranker, *, threshold: float = KEY_THRESHOLD,
         model: Model | None = None,
         max_choices: int = 5, none_margin: float = 0.0) -> tuple[list[tuple[int, float]], list[int | None]]:
    """The keys among the candidate spans (span index, probability), best first, and the value span of each.

    A span that looks like a key may be another key's value (a date under "DATE:"): values are first chosen among
    all spans, keys that became another key's value are dropped, and the rest choose again. A key has no value
    when "not printed" outscores its best span by more than ``none_margin``."""
    pool = [i for i, s in enumerate(cands.spans) if s.kind in KEY_KINDS and len(s.text) <= MAX_KEY_CHARS]
    if not pool:
        return [], []
    probs = key_model.probabilities(key_rows(cands, pool))
    keys: list[tuple[int, float]] = []
    taken: set[tuple[int, int]] = set()
    for k in sorted(range(len(pool)), key=lambda k: -probs[k]):
        if probs[k] < threshold:
            break
        words = cands.spans[pool[k]].words
        if words & taken:
            continue
        taken |= words
        keys.append((pool[k], float(probs[k])))
    words_of = [s.words for s in cands.spans]
    boxes = [s.box for s in cands.spans]
    for round_ in range(2):
        key_words = [words_of[k] for k, _ in keys]
        choices: list[list[tuple[int | None, float]]] = []
        for n, (ki, _) in enumerate(keys):
            others = set().union(*(w for m, w in enumerate(key_words) if m != n)) if round_ else set()
            near = _near(cands.spans[ki], boxes)
            values = [i for i in near if not words_of[i] & key_words[n] and not words_of[i] & others]
            spec = FieldSpec(cands.spans[ki].text.rstrip(": "))
            scores = ranker.scores(cands.rows(spec, values, key=ki))
            none = float(ranker.scores([cands.none_row(spec)])[0]) - none_margin
            choices.append(sorted([(i, float(s)) for i, s in zip(values, scores, strict=True)] + [(None, none)],
                                  key=lambda t: -t[1]))
        picks = _assign(choices, cands) if model is None else _model_picks(model, keys, choices, cands, max_choices)
        used = set().union(*(words_of[v] for v in picks if v is not None))
        kept = [n for n, (ki, _) in enumerate(keys) if not words_of[ki] & used]
        if len(kept) == len(keys):
            break
        keys = [keys[n] for n in kept]  # keys that are another key's value: values after all
    return keys, picks


def _near(key: Span, boxes: Sequence[Any]) -> list[int]:
    """The spans a key's value can be: on the key's lines or below it, within a few line heights (a value is printed
    right of its key or under it), on the key's page."""
    k = key.box
    h = max(k.height / key.lines, 1e-6)
    return [i for i, b in enumerate(boxes) if b.y1 >= k.y0 - 0.5 * h and b.y0 <= k.y1 + 6 * h and b.x1 >= k.x0 - 4 * h]


def _assign(choices: Sequence[Sequence[tuple[int | None, float]]], cands: Candidates) -> list[int | None]:
    """Each key's best value, a value's words going to the key that ranks it best (the other takes its next)."""
    picks: list[int | None] = [None] * len(choices)
    position = [0] * len(choices)
    used: dict[tuple[int, int], int] = {}
    pending = list(range(len(choices)))
    while pending:
        k = pending.pop()
        while position[k] < len(choices[k]):
            index, score = choices[k][position[k]]
            if index is None:
                break
            words = cands.spans[index].words
            rivals = {used[w] for w in words if w in used}
            if all(score > _score_of(choices[r], picks[r]) for r in rivals):
                for r in rivals:  # they lose the value and look further down their list
                    lost = picks[r]
                    if lost is not None:
                        for w in cands.spans[lost].words:
                            used.pop(w, None)
                    picks[r] = None
                    position[r] += 1
                    pending.append(r)
                picks[k] = index
                for w in words:
                    used[w] = k
                break
            position[k] += 1
    return picks


def _score_of(ranked: Sequence[tuple[int | None, float]], index: int | None) -> float:
    return next(s for i, s in ranked if i == index)


def _model_picks(model: Model, keys: Sequence[tuple[int, float]], choices: Sequence[Sequence[tuple[int | None, float]]],
                 cands: Candidates, max_choices: int) -> list[int | None]:
    """The model chooses each key's value among its best-ranked spans, in one constrained answer."""
    fields: dict[str, Any] = {}
    offered: list[dict[str, int]] = []
    for n, ranked in enumerate(choices):
        texts: dict[str, int] = {}
        for index, _ in ranked[:max_choices]:
            if index is not None:
                texts.setdefault(cands.spans[index].text, index)
        offered.append(texts)
        fields[f"k{n}"] = (optional_choice(list(texts)) if texts else None, Field(default=None))
    answer_model = create_model("KeyValues", __config__=ConfigDict(extra="forbid"), **fields)
    listing = "\n".join(f"k{n}: {cands.spans[ki].text}" for n, (ki, _) in enumerate(keys))
    text = "\n".join(ln.text for ln in _lines(cands))
    answer = model.generate(f"Document:\n{text}\n\nFor each key, copy the value printed with it, or null:\n{listing}\n"
                            "Answer in JSON.", answer_model)
    return [offered[n].get(getattr(answer, f"k{n}")) if getattr(answer, f"k{n}") is not None else None
            for n in range(len(keys))]


def _weighed(model: Model, cands: Candidates, name: str, spans: Sequence[int], probs: Any,
             max_choices: int) -> Any:
    """The link model's probabilities of a key's values with a scoring model's weighed in (`linked_values`)."""
    import numpy as np

    from docvlm.tasks._context import LM_WEIGHT, field_prompt, text_near

    weight = model.choice_weight if model.choice_weight is not None else LM_WEIGHT
    order = [int(j) for j in np.argsort(-probs)[:max_choices]]
    texts = list(dict.fromkeys(cands.spans[spans[j]].text for j in order))
    if weight <= 0 or len(texts) < 2:
        return probs
    text = text_near(_lines(cands), [cands.spans[spans[j]].segment.id for j in order], max_chars=6000)
    lm = model.score(field_prompt(text, name), texts)
    out = probs.copy()
    logits = {j: float(np.log(max(probs[j], 1e-9) / max(1 - probs[j], 1e-9)))
              + weight * (lm[texts.index(cands.spans[spans[j]].text)] - max(lm)) for j in order}
    for j, z in logits.items():
        out[j] = 1.0 / (1.0 + np.exp(-min(max(z, -50.0), 50.0)))
    out[max(logits, key=lambda j: logits[j])] = probs[order[0]]  # the model's choice takes the best place
    return out


def _lines(cands: Candidates) -> list[Any]:
    seen: dict[int, Any] = {}
    for ctx in cands.contexts:
        for line in ctx.lines:
            seen.setdefault(id(line), line)
    return list(seen.values())
