"""The console's findings table: filters parsed from a query string, one page of rows.

Filters are checked against what exists (kinds, statuses) before they reach SQL, and a
bad one is an InvalidInput naming the field, so the page can say which box is wrong.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select

from auth.errors import InvalidInput
from auth.models import Account, Finding, FindingKind, FindingStatus, table

_A, _F = table(Account), table(Finding)
PAGE_SIZE = 50
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
        raise InvalidInput(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    status = args.get("status", FindingStatus.OPEN.value).strip()
    if status == "any":
        status = ""
    elif status not in STATUSES:
        raise InvalidInput(f"status: {status!r} is not one of {', '.join(STATUSES)} or any")
    breach = args.get("breach", "").strip()
    if len(breach) > 200:
        raise InvalidInput("breach: at most 200 characters")
    raw_page = args.get("page", "1").strip() or "1"
    if not raw_page.isdigit() or int(raw_page) < 1 or int(raw_page) > 1_000_000:
        raise InvalidInput(f"page: {raw_page!r} is not a page number")
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


def page(conn: Connection, filters: Filters, *, size: int = PAGE_SIZE) -> Page:
    """One page of findings, newest evidence first, with the account's e-mail."""
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
        .order_by(_F.c.last_seen.desc(), _F.c.id.desc())
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
        if not raw.strip().isdigit():
            raise InvalidInput(f"finding: {raw!r} is not a finding id")
        ids.append(int(raw))
    if not ids:
        raise InvalidInput("finding: tick at least one finding")
    if len(ids) > 1000:
        raise InvalidInput("finding: at most 1000 findings at a time")
    return sorted(set(ids))
