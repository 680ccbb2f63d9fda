"""Languages: the gettext catalogs and the locale's dates and numbers, without Flask.

Messages are written in English in the code and templates (the msgids); the catalogs in
auth/translations/<language>/LC_MESSAGES/messages.po give each language its text (French
is the default, English is the msgid itself). The pages (auth/web/i18n.py) and the
e-mails (auth/notify/messages.py) both read them here.

There is no compile step: a catalog is compiled in memory the first time it is needed.
A .mo file would be one more file to keep in step with its .po, and the installed package
is read-only where it runs (systemd's ProtectSystem=strict).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from auth.config import LANGUAGES

DOMAIN = "messages"
SOURCE_LANGUAGE = "en"  # the msgids
TRANSLATIONS = Path(str(resources.files("auth"))) / "translations"
# The people served work in France: times are shown in Paris time, whatever the language.
TIMEZONE = ZoneInfo("Europe/Paris")
COOKIE = "bg_lang"  # the language a browser chose with the switch


def N_(message: str) -> str:  # the name pybabel extracts by default
    """Marks a message for extraction where it is defined; translate it where it is shown."""
    return message


def catalog_path(language: str) -> Path:
    return TRANSLATIONS / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(language: str) -> NullTranslations:
    """The catalog of `language` (one of LANGUAGES), compiled once per process; English,
    the language of the msgids, needs none."""
    if language not in LANGUAGES:
        raise ValueError(f"no catalog for language {language!r}: expected one of {LANGUAGES}")
    if language == SOURCE_LANGUAGE:
        return NullTranslations()
    with catalog_path(language).open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out, as msgfmt does
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def best_language(accepted: list[tuple[str, float]], default: str) -> str:
    """The first of LANGUAGES a browser's Accept-Language list prefers, else `default`.
    `accepted` is (tag, quality) best first, as werkzeug parses the header; `fr-CA` counts
    for `fr`."""
    for tag, quality in accepted:
        language = tag.split("-")[0].split("_")[0].lower()
        if quality > 0 and language in LANGUAGES:
            return language
    return default


def format_datetime(value: dt.datetime, language: str, *, length: str = "medium") -> str:
    """A date and time as people of `language` write it, in Paris time: `11 août 2026,
    14:05` or `Aug 11, 2026, 2:05 PM` (length `medium`); `short` gives `11/08/2026 14:05`."""
    return dates.format_datetime(_aware(value), length, tzinfo=TIMEZONE, locale=language)


def format_date(value: dt.date | dt.datetime, language: str, *, length: str = "medium") -> str:
    """A day as people of `language` write it: `11 août 2026`, `Aug 11, 2026`."""
    if isinstance(value, dt.datetime):
        value = _aware(value).astimezone(TIMEZONE).date()
    return dates.format_date(value, length, locale=language)


def format_time(value: dt.datetime, language: str) -> str:
    """A time of day in Paris: `14:05` in French, `2:05 PM` in English."""
    return dates.format_time(_aware(value), "short", tzinfo=TIMEZONE, locale=language)


def format_number(value: float, language: str) -> str:
    """`12 345` (a narrow no-break space) in French, `12,345` in English."""
    return numbers.format_decimal(value, locale=language)


def language_name(language: str) -> str:
    """The language's own name for itself, capitalised: `Français`, `English`."""
    name = Locale.parse(language).get_display_name(language) or language
    return name[:1].upper() + name[1:]


def _aware(value: dt.datetime) -> dt.datetime:
    """Stored times are UTC; a naive one (SQLite hands some back so) is read as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
