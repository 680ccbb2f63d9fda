"""The catalogs: every string marked in auth/ is translated into French, nothing stale is
kept, and every translation keeps its placeholders. Fails on an untranslated string.

The strings are gathered as `make translations` does (pybabel with babel.cfg), so a new
`_()` in a view or a template fails here until its French is in
auth/translations/fr/LC_MESSAGES/messages.po."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from auth import i18n
from auth.config import LANGUAGES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def marked(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The strings marked in auth/, extracted with the Makefile's command."""
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    here = Path.cwd()
    os.chdir(ROOT)  # babel.cfg's patterns are relative to the repository
    try:
        CommandLineInterface().run(
            ["pybabel", "-q", "extract", "-F", "babel.cfg", "--no-location", "-o", str(pot), "."]
        )
    finally:
        os.chdir(here)
    with pot.open("rb") as fh:
        return read_po(fh)


def _french() -> Catalog:
    with i18n.catalog_path("fr").open("rb") as fh:
        return read_po(fh, locale="fr")


def _ids(catalog: Catalog) -> set[object]:
    return {m.id for m in catalog if m.id}


def test_extraction_finds_the_pages_strings(marked: Catalog) -> None:
    """A guard on the guard: the extraction sees templates, Python and e-mails."""
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in marked if m.id}
    assert {"Sign out", "Language"} <= ids
    assert len(ids) > 100


def test_every_marked_string_has_a_french_translation(marked: Catalog) -> None:
    french = _french()
    missing = []
    for message in marked:
        if not message.id:
            continue
        translated = french.get(message.id, message.context)
        strings = [] if translated is None else translated.string
        strings = [strings] if isinstance(strings, str) else list(strings)
        if translated is None or translated.fuzzy or not strings or not all(strings):
            missing.append(message.id)
    assert missing == [], f"untranslated or fuzzy in French (make translations): {missing}"


def test_the_french_catalog_keeps_no_string_the_code_no_longer_uses(marked: Catalog) -> None:
    stale = _ids(_french()) - _ids(marked)
    assert stale == set(), f"obsolete entries (make translations drops them): {stale}"
    assert "#~" not in i18n.catalog_path("fr").read_text(encoding="utf-8")


def test_translations_keep_their_placeholders_and_plural_forms() -> None:
    """As `msgfmt --check`: the same %(name)s placeholders as the msgid, and as many
    plural forms as French has."""
    french = _french()
    assert french.num_plurals == 2
    problems = [(m.id, [str(e) for e in errors]) for m, errors in french.check()]
    assert problems == []


def test_every_language_has_a_catalog_that_compiles() -> None:
    for language in LANGUAGES:
        catalog = i18n.translations(language)
        assert catalog.gettext("Sign out") == {"fr": "Se déconnecter", "en": "Sign out"}[language]
