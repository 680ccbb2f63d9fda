"""The incident report: what a regulator's breach notification (GDPR art. 33) asks for,
gathered from the database for a time window, and rendered as Markdown or HTML.

`gather` does the queries (set-based: counts, first and last times, never a row per
account unless the listing is asked for); `to_markdown` and `to_html` are pure functions of
the gathered `Incident`. The report states what the tool knows (exposures found, measures
taken with their times, second-factor coverage before and after) and leaves marked fields
for what only the controller knows (the DPO's contact, the likely consequences).
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, distinct, func, select
from sqlalchemy.sql import ColumnElement

from auth import coverage
from auth.audit import Action
from auth.models import (
    Account,
    AuditEvent,
    Finding,
    IpBan,
    Notice,
    Reset,
    table,
)

TO_FILL = "[TO BE COMPLETED BY THE DATA PROTECTION OFFICER]"
KIND_LABELS = {
    "valid_credential": "leaked e-mail and password that still signed in",
    "password_in_breach": "password found in a breach corpus",
    "email_in_breach": "e-mail address found in a breach",
}


@dataclass(frozen=True)
class Exposure:
    """Findings first seen in the window, for one kind of evidence and one breach."""

    kind: str
    breach: str
    findings: int
    accounts: int
    first_seen: dt.datetime
    last_seen: dt.datetime


@dataclass(frozen=True)
class Measure:
    """One kind of action taken by one actor in the window, with its first and last time."""

    what: str
    by: str
    count: int
    accounts: int  # distinct accounts (or addresses, for bans) it touched
    first: dt.datetime
    last: dt.datetime


@dataclass(frozen=True)
class AffectedAccount:
    id: int
    email: str
    kinds: tuple[str, ...]
    first_seen: dt.datetime
    reset_at: dt.datetime | None


@dataclass(frozen=True)
class Incident:
    since: dt.datetime
    until: dt.datetime
    generated_at: dt.datetime
    exposures: tuple[Exposure, ...]
    accounts_affected: int  # distinct accounts over every exposure
    accounts_total: int
    measures: tuple[Measure, ...]
    coverage_day: dt.date  # the last day counted as "before" the window
    coverage_before: coverage.Coverage | None  # None: no daily figure was recorded by then
    coverage_after: coverage.Coverage
    accounts: tuple[AffectedAccount, ...] | None = None  # only with --with-accounts


_F, _R, _A = table(Finding), table(Reset), table(Account)
_E, _B, _N = table(AuditEvent), table(IpBan), table(Notice)


def _in(
    column: ColumnElement[dt.datetime], since: dt.datetime, until: dt.datetime
) -> list[ColumnElement[bool]]:
    return [column >= since, column < until]


def _exposures(conn: Connection, since: dt.datetime, until: dt.datetime) -> list[Exposure]:
    rows = conn.execute(
        select(
            _F.c.kind,
            _F.c.breach,
            func.count(),
            func.count(distinct(_F.c.account_id)),
            func.min(_F.c.first_seen),
            func.max(_F.c.first_seen),
        )
        .where(*_in(_F.c.first_seen, since, until))
        .group_by(_F.c.kind, _F.c.breach)
        .order_by(_F.c.kind, _F.c.breach)
    ).all()
    return [Exposure(*row) for row in rows]


def _grouped(
    conn: Connection,
    what: str,
    by: ColumnElement[str] | str,
    subject: ColumnElement[Any],
    at: ColumnElement[dt.datetime],
    since: dt.datetime,
    until: dt.datetime,
    *where: ColumnElement[bool],
) -> list[Measure]:
    """Per actor (`by` a column), or one row for everyone (`by` a fixed label)."""
    figures = (func.count(), func.count(distinct(subject)), func.min(at), func.max(at))
    query = select(*figures).where(*_in(at, since, until), *where)
    if isinstance(by, str):
        rows: list[Any] = [(by, *row) for row in conn.execute(query).all()]
    else:
        rows = [(r[-1], *r[:-1]) for r in conn.execute(query.add_columns(by).group_by(by))]
    return [Measure(what, str(b), n, d, first, last) for b, n, d, first, last in rows if n]


def _measures(conn: Connection, since: dt.datetime, until: dt.datetime) -> list[Measure]:
    w = (since, until)
    found = [
        *_grouped(conn, "password reset forced", _R.c.actor, _R.c.account_id, _R.c.created_at, *w),
        *_grouped(
            conn,
            "second factor required",
            _F.c.acted_by,
            _F.c.account_id,
            _F.c.acted_at,
            *w,
            _F.c.action == "mfa",
        ),
        *_grouped(
            conn,
            "finding dismissed",
            _F.c.acted_by,
            _F.c.account_id,
            _F.c.acted_at,
            *w,
            _F.c.action == "dismiss",
        ),
        *_grouped(
            conn,
            "account locked (wrong passwords)",
            _E.c.actor,
            _E.c.target,
            _E.c.at,
            *w,
            _E.c.action == Action.ACCOUNT_LOCKED.value,
        ),
        *_grouped(
            conn,
            "second factor locked (wrong codes)",
            _E.c.actor,
            _E.c.target,
            _E.c.at,
            *w,
            _E.c.action == Action.MFA_LOCKED.value,
        ),
        *_grouped(conn, "IP address banned", _B.c.created_by, _B.c.network, _B.c.created_at, *w),
        *_grouped(
            conn,
            "new password set after a forced reset",
            "the account holder",
            _R.c.account_id,
            _R.c.completed_at,
            *w,
        ),
        *_grouped(
            conn,
            "e-mail notice sent",
            _N.c.kind,
            _N.c.account_id,
            _N.c.sent_at,
            *w,
        ),
    ]
    return sorted(found, key=lambda m: m.first)


def _affected(conn: Connection, since: dt.datetime, until: dt.datetime) -> list[AffectedAccount]:
    """The opt-in listing: one row per account, its kinds of exposure, its first reset."""
    window = _in(_F.c.first_seen, since, until)
    kinds: dict[int, set[str]] = {}
    firsts: dict[int, dt.datetime] = {}
    for account_id, kind, first in conn.execute(
        select(_F.c.account_id, _F.c.kind, _F.c.first_seen).where(*window)
    ):
        kinds.setdefault(account_id, set()).add(kind)
        firsts[account_id] = min(first, firsts.get(account_id, first))
    if not kinds:
        return []
    affected = select(_F.c.account_id).where(*window)
    emails = dict(conn.execute(select(_A.c.id, _A.c.email).where(_A.c.id.in_(affected))).all())
    resets = dict(
        conn.execute(
            select(_R.c.account_id, func.min(_R.c.created_at))
            .where(_R.c.account_id.in_(affected), _R.c.created_at >= since)
            .group_by(_R.c.account_id)
        ).all()
    )
    return [
        AffectedAccount(a, emails.get(a, "?"), tuple(sorted(kinds[a])), firsts[a], resets.get(a))
        for a in sorted(kinds)
    ]


def gather(
    conn: Connection,
    *,
    since: dt.datetime,
    until: dt.datetime,
    now: dt.datetime,
    with_accounts: bool = False,
) -> Incident:
    """Everything the report says, read in one connection."""
    window = (since, until)
    affected = conn.execute(
        select(func.count(distinct(_F.c.account_id))).where(*_in(_F.c.first_seen, *window))
    ).scalar_one()
    # The day before the window: a daily figure taken on `since`'s own day may already
    # count enrollments made in response to the incident.
    day = since.date() - dt.timedelta(days=1)
    return Incident(
        since=since,
        until=until,
        generated_at=now,
        exposures=tuple(_exposures(conn, *window)),
        accounts_affected=int(affected),
        accounts_total=int(conn.execute(select(func.count()).select_from(_A)).scalar_one()),
        measures=tuple(_measures(conn, *window)),
        coverage_day=day,
        coverage_before=coverage.on_or_before(conn, day),
        coverage_after=coverage.current(conn, now.date()),
        accounts=tuple(_affected(conn, *window)) if with_accounts else None,
    )


# --- rendering (pure) -----------------------------------------------------------------------


def _t(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def _coverage_line(figures: coverage.Coverage | None, day: dt.date) -> str:
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
    by_kind: dict[str, int] = {}
    for e in inc.exposures:
        by_kind[e.kind] = by_kind.get(e.kind, 0) + e.accounts
    kinds = "; ".join(
        f"{KIND_LABELS.get(k, k)}: {n} account(s)" for k, n in sorted(by_kind.items())
    )
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
