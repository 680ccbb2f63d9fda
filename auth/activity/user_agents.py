"""A browser's User-Agent in words a person recognises: "Firefox on Windows", "Safari on
iPhone". Only the browser's and the system's names are kept: a version or a device model
would help nobody decide whether a sign-in was theirs."""

from __future__ import annotations

import re
from collections.abc import Callable

# In order: the first that matches names the browser (Edge and Opera also say "Chrome",
# Chrome also says "Safari").
_BROWSERS = (
    ("Edge", re.compile(r"\bEdg(e|A|iOS)?/")),
    ("Opera", re.compile(r"\b(OPR|Opera)/")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/")),
    ("Firefox", re.compile(r"\b(Firefox|FxiOS)/")),
    ("Chrome", re.compile(r"\b(Chrome|CriOS|Chromium)/")),
    ("Safari", re.compile(r"\bSafari/")),
)
_SYSTEMS = (
    ("iPhone", re.compile(r"\biPhone\b")),
    ("iPad", re.compile(r"\biPad\b")),
    ("Android", re.compile(r"\bAndroid\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b")),
)


def names(user_agent: str) -> tuple[str | None, str | None]:
    """(browser, system), each None when not recognised."""
    browser = next((name for name, pattern in _BROWSERS if pattern.search(user_agent)), None)
    system = next((name for name, pattern in _SYSTEMS if pattern.search(user_agent)), None)
    return browser, system


def describe(user_agent: str, gettext: Callable[..., str]) -> str:
    """The browser in words, in the reader's language (`gettext` of their catalog)."""
    browser, system = names(user_agent or "")
    if browser and system:
        return gettext("%(browser)s on %(system)s", browser=browser, system=system)
    if browser:
        return browser
    if system:
        return gettext("a browser on %(system)s", system=system)
    return gettext("an unknown browser or program")
