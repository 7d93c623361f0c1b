"""dv.key_values with a text-only model that scores: each key's best values are weighed as dv.extract weighs a
field's, with extraction's field prompt."""

from __future__ import annotations

import docvlm as dv
from docvlm.models import FunctionModel, Message
from docvlm.tasks.extract import field_prompt
from tests.tasks.test_key_values import form_pdf, pairs


def test_a_scoring_model_moves_each_keys_value_among_its_best_ranked() -> None:
    page = dv.open(form_pdf())[0]
    layout = pairs(dv.key_values(None, page))
    asked: dict[str, list[str]] = {}

    def scorer(messages: list[Message], continuations: list[str], prefix: str) -> list[float]:
        question = messages[-1].text.rsplit("What is the ", 1)[1].split("? Copy", 1)[0]
        text = messages[-1].text.split("Document:\n", 1)[1].rsplit("\n\nWhat is the ", 1)[0]
        assert messages[-1].text == field_prompt(text, question)
        asked[question] = continuations
        return [0.0 if i == len(continuations) - 1 else -50.0 for i in range(len(continuations))]  # the last one

    model = FunctionModel(lambda m, i: None, supports_images=False, scorer=scorer)
    got = pairs(dv.key_values(model, page, max_choices=3))
    assert asked and all(len(c) <= 3 for c in asked.values())
    moved = [k for k, v in got.items() if k.rstrip(": ") in asked and v != layout.get(k)]
    # the model's (odd) preference wins over the ranking where it scored; a value two keys want still goes to one
    assert any(got[key] == asked[key.rstrip(": ")][-1] for key in moved)
    assert all(got[key] in [*asked[key.rstrip(": ")], None] for key in moved)
    assert got.get("Fax:", "missing") == layout.get("Fax:", "missing")  # "no value" stays the ranker's call


def test_with_no_weight_on_the_model_the_reading_is_the_layouts() -> None:
    page = dv.open(form_pdf())[0]
    calls = []

    def scorer(messages: list[Message], continuations: list[str], prefix: str) -> list[float]:
        calls.append(continuations)
        return [-float(i) for i in range(len(continuations), 0, -1)]

    model = FunctionModel(lambda m, i: None, supports_images=False, scorer=scorer)
    model.choice_weight = 0.0
    assert pairs(dv.key_values(model, page)) == pairs(dv.key_values(None, page))
    assert calls == []  # weight 0: the ranking alone decides and the model is not asked
    model.choice_weight = 1e-9  # a vanishing weight asks the model and changes nothing
    assert pairs(dv.key_values(model, page)) == pairs(dv.key_values(None, page)) and calls
