"""The console's findings table: filters parsed from a query string, one page of rows.

Filters are checked against what exists (kinds, statuses) before they reach SQL, and a
bad one is an InvalidInput naming the field, so the page can say which box is wrong.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, distinct, func, select

from auth.console.forms import FieldError
from auth.console.labels import URGENT
from auth.db import among
from auth.models import Account, Finding, FindingKind, FindingStatus, table
from auth.web.i18n import gettext

_A, _F = table(Account), table(Finding)
PAGE_SIZE = 50
SELECTION_MAX = 1000  # findings one action may touch
STATUSES = tuple(s.value for s in FindingStatus)
KINDS = tuple(k.value for k in FindingKind)


@dataclass(frozen=True)
class Filters:
    kind: str = ""
    breach: str = ""
    status: str = FindingStatus.OPEN.value  # "" means every status
    page: int = 1

    def as_query(self, **changes: Any) -> dict[str, Any]:
        """The filters as query-string arguments (empty ones left out), for links."""
        values: dict[str, Any] = {
            "kind": self.kind,
            "breach": self.breach,
            "status": self.status or "any",
            "page": self.page,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v not in ("", None, 1) or k == "status"}


def parse_filters(args: Mapping[str, str]) -> Filters:
    """`kind`, `breach`, `status` (`any` for all) and `page` from a query string."""
    kind = args.get("kind", "").strip()
    if kind and kind not in KINDS:
        raise FieldError("kind", gettext("Choose a kind from the list."))
    status = args.get("status", FindingStatus.OPEN.value).strip()
    if status == "any":
        status = ""
    elif status not in STATUSES:
        raise FieldError("status", gettext("Choose a status from the list."))
    breach = args.get("breach", "").strip()
    if len(breach) > 200:
        raise FieldError("breach", gettext("A breach name has at most 200 characters."))
    raw_page = args.get("page", "1").strip() or "1"
    if not raw_page.isdigit() or int(raw_page) < 1 or int(raw_page) > 1_000_000:
        raise FieldError("page", gettext("This is not a page number."))
    return Filters(kind=kind, breach=breach, status=status, page=int(raw_page))


@dataclass(frozen=True)
class Row:
    id: int
    account_id: int
    email: str
    kind: str
    source: str
    breach: str
    status: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    action: str | None
    acted_at: dt.datetime | None
    acted_by: str | None
    note: str | None


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    total: int
    filters: Filters
    breaches: list[str]  # every breach name that has a finding, for the filter's choices

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


def _where(filters: Filters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.kind:
        conditions.append(_F.c.kind == filters.kind)
    if filters.breach:
        conditions.append(_F.c.breach == filters.breach)
    if filters.status:
        conditions.append(_F.c.status == filters.status)
    return conditions


# A leaked password that still signs in comes before everything else.
_URGENT_FIRST = case((_F.c.kind == URGENT, 0), else_=1)


def page(conn: Connection, filters: Filters, *, size: int = PAGE_SIZE) -> Page:
    """One page of findings, the most urgent kind first, then newest evidence first, with
    the account's e-mail."""
    where = _where(filters)
    total = int(conn.execute(select(func.count()).select_from(_F).where(*where)).scalar() or 0)
    rows = conn.execute(
        select(
            _F.c.id,
            _F.c.account_id,
            _A.c.email,
            _F.c.kind,
            _F.c.source,
            _F.c.breach,
            _F.c.status,
            _F.c.first_seen,
            _F.c.last_seen,
            _F.c.action,
            _F.c.acted_at,
            _F.c.acted_by,
            _F.c.note,
        )
        .join(_A, _A.c.id == _F.c.account_id)
        .where(*where)
        .order_by(_URGENT_FIRST, _F.c.last_seen.desc(), _F.c.id.desc())
        .limit(size)
        .offset((filters.page - 1) * size)
    ).all()
    breaches = list(
        conn.execute(select(_F.c.breach).distinct().order_by(_F.c.breach)).scalars().all()
    )
    return Page([Row(**r._mapping) for r in rows], total, filters, breaches)


def parse_selection(values: list[str]) -> list[int]:
    """The ticked findings' ids from the form; at least one, every one a number."""
    ids: list[int] = []
    for raw in values:
        if not raw.strip().isdigit() or len(raw.strip()) > 18:
            raise FieldError(
                "finding", gettext("The selection holds something else than findings.")
            )
        ids.append(int(raw))
    if not ids:
        raise FieldError("finding", gettext("Tick at least one finding, or all of them."))
    return _at_most(sorted(set(ids)))


def _at_most(ids: list[int]) -> list[int]:
    if len(ids) > SELECTION_MAX:
        message = gettext(
            "At most %(max)d findings at a time: narrow the filters.", max=SELECTION_MAX
        )
        raise FieldError("finding", message)
    return ids


def matching(conn: Connection, filters: Filters) -> list[int]:
    """Every finding the filters match, on every page ("select all")."""
    ids = conn.execute(
        select(_F.c.id).where(*_where(filters)).order_by(_F.c.id).limit(SELECTION_MAX + 1)
    ).scalars()
    found = list(ids)
    if not found:
        raise FieldError("finding", gettext("No finding matches these filters."))
    return _at_most(found)


@dataclass(frozen=True)
class Scope:
    """What an action on a selection would touch: its open findings and their accounts."""

    findings: int  # selected
    open_findings: int  # the ones an action acts on
    accounts: int  # distinct accounts behind the open ones
    emails: list[str]  # some of them, to show


def scope(conn: Connection, ids: list[int], *, shown: int = 10) -> Scope:
    open_ = (among(_F.c.id, ids), _F.c.status == FindingStatus.OPEN)
    row = conn.execute(
        select(func.count(), func.count(distinct(_F.c.account_id))).where(*open_)
    ).one()
    emails = conn.execute(
        select(_A.c.email)
        .where(_A.c.id.in_(select(_F.c.account_id).where(*open_)))
        .order_by(_A.c.email)
        .limit(shown)
    ).scalars()
    return Scope(len(ids), int(row[0]), int(row[1]), list(emails))
