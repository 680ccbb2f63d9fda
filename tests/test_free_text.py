"""A person's free text (names, reasons): one line, and no control characters."""

from __future__ import annotations

import pytest

from auth.errors import InvalidInput, one_line


def test_whitespace_runs_become_one_space() -> None:
    assert one_line("  Dr\tClaire \n  Martin ", "name") == "Dr Claire Martin"


@pytest.mark.parametrize(
    "kept", ["Zoë Ørsted", "Mehr\u200cnaz", "👩\u200d⚕️ Claire", "O'Neil-Dupont"]
)
def test_letters_accents_emoji_and_joiners_are_kept(kept: str) -> None:
    assert one_line(kept, "name") == kept


@pytest.mark.parametrize("bad", ["a\x00b", "bell\x07", "esc\x1b[31m", "del\x7f", "csi\x9b31m"])
def test_control_characters_are_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(InvalidInput, match=r"^reason: no control characters$"):
        one_line(bad, "reason")
