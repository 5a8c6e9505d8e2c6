"""`FormField.typed`: what a person typed for a field, as a decision sends it (the CLI's
`--field NAME=VALUE`), the way the task page sends what is typed into its form."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import JsonValue

from hitl.client.models import FormField, Review


@pytest.mark.parametrize(
    ("kind", "text", "sent"),
    [
        ("text", "  as typed  ", "  as typed  "),
        ("text", "", None),  # nothing typed: left out, as the page leaves an empty field out
        ("text", "   ", None),
        ("integer", "4", 4),
        ("integer", " 4 ", 4),
        ("integer", "4.0", 4),  # as JSON.stringify writes 4.0 (so stored alike)
        ("integer", "4.5", 4.5),  # and refuses this one, in its own words
        ("number", "2.5", 2.5),
        ("number", "-3", -3),
        ("number", "1e3", 1000),
        ("number", "1e21", 1e21),  # (JSON.stringify: 1e+21)
        ("number", "five", "five"),  # the server says: must be a number
        ("number", "nan", "nan"),
        ("number", "inf", "inf"),
        ("number", "Infinity", "Infinity"),
        ("number", "1e400", "1e400"),
        ("number", ".5", 0.5),
        ("number", "5.", 5),
        ("number", "+7", 7),
        ("number", "0x10", 16),  # as JavaScript's Number reads them
        ("number", "0o17", 15),
        ("number", "0b11", 3),
        ("number", "-0x10", "-0x10"),  # which it does not
        ("number", "1_000", "1_000"),  # Python's int() would take these; Number does not
        ("number", "\u0664", "\u0664"),  # (an Arabic-Indic 4)
        ("number", "\uff14", "\uff14"),  # (a full-width 4)
        ("integer", "1" + "0" * 400, 10**400),  # exact (JavaScript would round it), no crash
        ("integer", "9" * 5000, "9" * 5000),  # past Python's 4,300 digits: too big to read
        ("number", "\ufeff5\u3000", 5),  # what JavaScript's trim takes off
        ("number", "\x1c5", "\x1c5"),  # and what it does not (Python's strip would)
        ("text", "\x85", "\x85"),
        ("boolean", "yes", True),
        ("boolean", "True", True),
        ("boolean", "no", False),
        ("boolean", "FALSE", False),
        ("boolean", "maybe", "maybe"),  # the server says: must be true or false
        ("choice", " bug ", "bug"),
    ],
)
def test_typed_text_is_sent_as_its_field_takes_it(kind: str, text: str, sent: JsonValue) -> None:
    field = FormField(name="f", type=kind, choices=["bug"] if kind == "choice" else [])
    value = field.typed(text)
    assert (value, type(value)) == (sent, type(sent))  # (4 == 4.0 and 1 == True: types too)


def test_a_field_belongs_to_the_decisions_it_names_or_to_all() -> None:
    assert FormField(name="f").asked_for("reject")
    only = FormField(name="f", decisions=["approve"])
    assert only.asked_for("approve") and not only.asked_for("reject")


FORM = [
    FormField(name="score", type="integer", decisions=["approve"]),
    FormField(name="urgent", type="boolean"),
    FormField(name="kind", type="choice", choices=["bug"], decisions=["reject"]),
]


def review(form: list[FormField]) -> Review:
    return Review(
        id="r",
        task_id="t",
        round=1,
        status="open",
        node="review",
        form=form,
        created_at=datetime.now(UTC),
        content_hash="0" * 64,
    )


@pytest.mark.parametrize(
    ("decision", "typed", "sent"),
    [
        # A yes-or-no field not given is false, as the page's unticked box.
        ("approve", {"score": "4"}, {"score": 4, "urgent": False}),
        ("approve", {"score": "", "urgent": "yes"}, {"urgent": True}),
        ("approve", {"urgent": ""}, {"urgent": False}),
        ("reject", {"kind": " bug "}, {"kind": "bug", "urgent": False}),
        # A name that is no field of the decision goes as typed, even empty: the server
        # refuses it by name, rather than the CLI dropping what was asked for.
        ("reject", {"score": ""}, {"urgent": False, "score": ""}),
        ("approve", {"nope": "1"}, {"urgent": False, "nope": "1"}),
    ],
)
def test_a_decision_sends_the_form_as_the_page_would(
    decision: str, typed: dict[str, str], sent: dict[str, JsonValue]
) -> None:
    assert review(FORM).form_for(decision, typed) == sent


def test_a_review_without_a_form_sends_none_of_it() -> None:
    assert review([]).form_for("approve", {}) == {}
