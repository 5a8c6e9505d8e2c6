"""`FormField.typed`: what a person typed for a field, as a decision sends it (the CLI's
`--field NAME=VALUE`), the way the task page sends what is typed into its form."""

from __future__ import annotations

import pytest
from pydantic import JsonValue

from hitl.client.models import FormField


@pytest.mark.parametrize(
    ("kind", "text", "sent"),
    [
        ("text", "  as typed  ", "  as typed  "),
        ("text", "", None),  # nothing typed: left out, as the page leaves an empty field out
        ("text", "   ", None),
        ("integer", "4", 4),
        ("integer", " 4 ", 4),
        ("integer", "4.0", 4.0),  # the server takes a whole number written so
        ("integer", "4.5", 4.5),  # and refuses this one, in its own words
        ("number", "2.5", 2.5),
        ("number", "-3", -3),
        ("number", "1e3", 1000.0),
        ("number", "five", "five"),  # the server says: must be a number
        ("number", "nan", "nan"),
        ("number", "inf", "inf"),
        ("number", "1e400", "1e400"),
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
