"""The incident report as Markdown or HTML: pure functions of the gathered Incident.

The report states what the tool knows (exposures found, measures taken with their times,
second-factor coverage before and after) and leaves marked fields for what only the
controller knows (the DPO's contact, the likely consequences).
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from auth.mfa import census
from auth.report.incident import Incident

TO_FILL = "[TO BE COMPLETED BY THE DATA PROTECTION OFFICER]"
KIND_LABELS = {
    "valid_credential": "leaked e-mail and password that still signed in",
    "password_in_breach": "password found in a breach corpus",
    "email_in_breach": "e-mail address found in a breach",
}


def _t(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def _coverage_line(figures: census.Census | None, day: dt.date) -> str:
    if figures is None:
        return f"not recorded (no daily coverage figure on or before {day:%Y-%m-%d})"
    return (
        f"{figures.covered} of {figures.accounts} accounts ({figures.share:.1%}) "
        f"as counted on {figures.day:%Y-%m-%d}: TOTP only {figures.totp}, "
        f"security key only {figures.webauthn}, both {figures.both}, none {figures.none}"
    )


Table = tuple[Sequence[str], Sequence[Sequence[str]]]


@dataclass(frozen=True)
class _Section:
    title: str
    paragraphs: tuple[str, ...] = ()
    table: Table | None = None


def _sections(inc: Incident) -> list[_Section]:
    """The report's content once, for both renderings."""
    kinds = "; ".join(f"{KIND_LABELS.get(k, k)}: {n} account(s)" for k, n in inc.accounts_by_kind)
    sections = [
        _Section(
            "1. Nature of the personal data breach",
            (
                f"Credentials of accounts of this service were found exposed in third-party "
                f"data leaks between {_t(inc.since)} and {_t(inc.until)} (UTC).",
                f"Kinds of exposure: {kinds or 'none recorded in this window'}.",
                f"Circumstances, and when the controller became aware of it: {TO_FILL}",
            ),
            (
                ("kind of evidence", "breach", "findings", "accounts", "first seen", "last seen"),
                [
                    (
                        KIND_LABELS.get(e.kind, e.kind),
                        e.breach,
                        str(e.findings),
                        str(e.accounts),
                        _t(e.first_seen),
                        _t(e.last_seen),
                    )
                    for e in inc.exposures
                ],
            ),
        ),
        _Section(
            "2. Categories and approximate number of data subjects concerned",
            (
                f"Health professionals holding an account: {inc.accounts_affected} account(s) "
                f"affected, of {inc.accounts_total} in total.",
                "Personal data concerned: account e-mail addresses and, where the evidence is "
                "a password, the account's password (stored by this service only as an "
                "argon2id hash; the leaked copies come from other services).",
                f"People whose data a blocked account's sessions looked up: "
                f"{inc.exposed_subjects} subject key(s), listed for the portal by "
                "`breachguard report exposure --alert ID`.",
                f"Patients or other people whose data those accounts can reach: {TO_FILL}",
            ),
        ),
        _Section(
            "3. Likely consequences of the breach",
            (
                "Without the measures below, a person holding a leaked password could sign "
                "in as the professional and read what the account gives access to.",
                f"Assessment of the consequences for the people concerned: {TO_FILL}",
            ),
        ),
        _Section(
            "4. Measures taken (times in UTC)",
            (
                "Second-factor coverage before the window: "
                + _coverage_line(inc.coverage_before, inc.coverage_day),
                "Second-factor coverage now: "
                + _coverage_line(inc.coverage_after, inc.coverage_after.day),
                f"Measures proposed or still to take: {TO_FILL}",
            ),
            (
                ("measure", "by", "count", "distinct subjects", "first", "last"),
                [
                    (m.what, m.by, str(m.count), str(m.accounts), _t(m.first), _t(m.last))
                    for m in inc.measures
                ],
            ),
        ),
        _Section(
            "5. Contact",
            (f"Data protection officer (name and contact details): {TO_FILL}",),
        ),
    ]
    if inc.accounts is not None:
        sections.append(
            _Section(
                "Annex: accounts affected (personal data: share only as required)",
                (),
                (
                    ("account", "e-mail", "kinds of exposure", "first seen", "reset forced"),
                    [
                        (str(a.id), a.email, ", ".join(a.kinds), _t(a.first_seen), _t(a.reset_at))
                        for a in inc.accounts
                    ],
                ),
            )
        )
    return sections


def _title(inc: Incident) -> str:
    return f"Personal data breach notification (GDPR art. 33): {_t(inc.since)} to {_t(inc.until)}"


def _md(value: str) -> str:
    """A value inside a Markdown table cell or paragraph: no markup, no broken row."""
    for ch in "\\`*_[]<>|":
        value = value.replace(ch, "\\" + ch)
    return " ".join(value.split())


def to_markdown(inc: Incident) -> str:
    lines = [f"# {_md(_title(inc))}", "", f"Generated {_t(inc.generated_at)} by breachguard.", ""]
    for section in _sections(inc):
        lines += [f"## {_md(section.title)}", ""]
        for p in section.paragraphs:
            lines += [_md(p).replace(_md(TO_FILL), f"**{_md(TO_FILL)}**"), ""]
        if section.table is not None:
            header, rows = section.table
            if not rows:
                lines += ["(none in this window)", ""]
                continue
            lines.append("| " + " | ".join(_md(h) for h in header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
            lines.append("")
    return "\n".join(lines)


def _cells(tag: str, values: Iterable[str]) -> str:
    return "".join(f"<{tag}>{html.escape(v)}</{tag}>" for v in values)


def to_html(inc: Incident) -> str:
    """A standalone page; every value is escaped (breach names come from imported files)."""
    title = html.escape(_title(inc))
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2em .5em}"
        ".to-fill{background:#ffd;font-weight:bold}</style></head><body>",
        f"<h1>{title}</h1>",
        f"<p>Generated {html.escape(_t(inc.generated_at))} by breachguard.</p>",
    ]
    fill = html.escape(TO_FILL)
    for section in _sections(inc):
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for p in section.paragraphs:
            text = html.escape(p).replace(fill, f'<span class="to-fill">{fill}</span>')
            parts.append(f"<p>{text}</p>")
        if section.table is not None:
            header, rows = section.table
            if not rows:
                parts.append("<p>(none in this window)</p>")
                continue
            parts.append("<table><thead><tr>" + _cells("th", header) + "</tr></thead><tbody>")
            parts += ["<tr>" + _cells("td", row) + "</tr>" for row in rows]
            parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
