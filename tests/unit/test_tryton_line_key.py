"""The shop's line item id a Tryton sale line keeps in its note (client.py writes it, way_back.py reads it back)."""

from __future__ import annotations

import pytest

from erpsync.systems.tryton.client import line_key_note
from erpsync.systems.tryton.way_back import _line_key


def test_a_key_written_is_read_back_even_among_a_persons_lines() -> None:
    assert _line_key(line_key_note("866550311766439020")) == "866550311766439020"
    assert _line_key(f"gift wrap, please\n{line_key_note('31')}\nchecked by Ann") == "31"


@pytest.mark.parametrize("note", [None, "", "gift wrap", "erpsync line key: ", "see erpsync line key: 31"])
def test_a_note_without_a_key_of_its_own_names_no_line_item(note: str | None) -> None:
    assert _line_key(note) is None
