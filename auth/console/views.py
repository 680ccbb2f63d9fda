"""The security console: /admin (dashboard), /admin/findings (filter, act on a selection),
/admin/accounts (search) and /admin/accounts/<id> (one account, its trail).

Every page wants a signed-in administrator whose session was opened with a second factor
and who still has one: a leaked administrator password alone opens nothing here. Pages
are plain HTML forms and server-drawn SVG, so they work without JavaScript.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from auth.console import accounts as console_accounts
from auth.console import actions, charts
from auth.console import figures as stats
from auth.console import findings as console_findings
from auth.errors import InvalidInput, NotFound
from auth.mfa import factors
from auth.models import Account, utcnow
from auth.web import session as web_session
from auth.web.context import services

bp = Blueprint("admin", __name__, url_prefix="/admin")

KIND_LABELS = {
    "valid_credential": "Leaked password works",
    "password_in_breach": "Password in a breach",
    "email_in_breach": "E-mail in a breach",
}


def _refused(reason: str) -> tuple[str, int]:
    return render_template("admin/refused.html", reason=reason), 403


@bp.before_request
def require_admin() -> Response | tuple[str, int] | None:
    """Signed in, an administrator, a second factor passed at sign-in and still enrolled."""
    account = web_session.current_account()
    if account is None:
        return redirect(url_for("pages.login", next=request.full_path.rstrip("?")))
    if not account.admin:
        return _refused("not_admin")
    if not web_session.passed_second_factor():
        return _refused("no_second_factor")
    with services().db.session() as db:
        if not factors.active(db, account.id):
            return _refused("no_second_factor")
    g.admin = account
    return None


def _admin() -> Account:
    account: Account = g.admin
    return account


# --- the dashboard ------------------------------------------------------------------------


def _figures(data: stats.Dashboard) -> list[charts.Figure]:
    days = [r.day.strftime("%m-%d") for r in data.resets]
    cover_days = [c.day.strftime("%m-%d") for c in data.coverage]
    last = data.last_day
    return [
        charts.bar_chart(
            "chart-findings",
            "Accounts with open findings, by kind",
            [(KIND_LABELS.get(k, k), n) for k, n in data.findings_by_kind],
            label_header="Kind",
            value_header="Accounts",
            colour=charts.PALETTE[5],
        ),
        charts.line_chart(
            "chart-resets",
            f"Password resets, last {len(days)} days",
            days,
            [
                charts.Series("Issued", tuple(r.issued for r in data.resets), charts.PALETTE[1]),
                charts.Series(
                    "Completed", tuple(r.completed for r in data.resets), charts.PALETTE[0]
                ),
            ],
        ),
        charts.stacked_bars(
            "chart-coverage",
            "Second-factor coverage (accounts)",
            cover_days,
            [
                charts.Series("Both", tuple(c.both for c in data.coverage), charts.PALETTE[2]),
                charts.Series("WebAuthn", tuple(c.webauthn for c in data.coverage), "#56B4E9"),
                charts.Series("TOTP", tuple(c.totp for c in data.coverage), charts.PALETTE[0]),
                charts.Series("None", tuple(c.none for c in data.coverage), "#BBBBBB"),
            ],
        ),
        charts.bar_chart(
            "chart-refusals",
            "Lockouts and bans, last 24 hours",
            [
                ("Locked accounts", last.lockouts),
                ("Second-factor locks", last.mfa_locks),
                ("Bans (automatic)", last.bans_automatic),
                ("Bans (by hand)", last.bans_manual),
            ],
            label_header="Event",
            value_header="Count",
            colour=charts.PALETTE[3],
        ),
    ]


@bp.get("")
def dashboard() -> str:
    with services().db.connection() as conn:
        data = stats.dashboard(conn, now=utcnow())
    return render_template(
        "admin/dashboard.html", data=data, figures=_figures(data), admin=_admin()
    )


# --- findings -----------------------------------------------------------------------------


def _findings_page(filters: console_findings.Filters, **extra: Any) -> str:
    with services().db.connection() as conn:
        page = console_findings.page(conn, filters)
    return render_template(
        "admin/findings.html",
        page=page,
        kinds=console_findings.KINDS,
        statuses=console_findings.STATUSES,
        kind_labels=KIND_LABELS,
        choices=actions.LABELS,
        **extra,
    )


@bp.get("/findings")
def findings() -> Any:
    try:
        filters = console_findings.parse_filters(request.args)
    except InvalidInput as exc:
        return _findings_page(console_findings.Filters(), error=str(exc)), 400
    return _findings_page(filters)


@bp.post("/findings")
def findings_act() -> Any:
    """One action on the ticked findings; back to the same filtered list (post/redirect/get)."""
    form = request.form
    try:
        filters = console_findings.parse_filters(form)
    except InvalidInput:
        filters = console_findings.Filters()
    selected = form.getlist("finding")
    try:
        choice = actions.parse_choice(form.get("action", ""))
        ids = console_findings.parse_selection(selected)
        outcome = actions.act(
            services(),
            admin_id=_admin().id,
            choice=choice,
            finding_ids=ids,
            reason=form.get("reason", ""),
        )
    except InvalidInput as exc:
        page = _findings_page(
            filters, error=str(exc), selected=set(selected), reason=form.get("reason", "")
        )
        return page, 400
    flash(outcome.message())
    return redirect(url_for("admin.findings", **filters.as_query()))


# --- accounts -----------------------------------------------------------------------------


@bp.get("/accounts")
def accounts() -> Any:
    query = request.args.get("email", "")
    try:
        with services().db.connection() as conn:
            found = console_accounts.search(conn, query)
    except InvalidInput as exc:
        return render_template("admin/accounts.html", query=query, found=[], error=str(exc)), 400
    return render_template("admin/accounts.html", query=query, found=found)


@bp.get("/accounts/<int:account_id>")
def account(account_id: int) -> Any:
    try:
        before = console_accounts.parse_before(request.args.get("before"))
    except InvalidInput as exc:
        return render_template("base.html", error=str(exc)), 400
    try:
        with services().db.connection() as conn:
            detail = console_accounts.detail(conn, account_id, before=before)
    except NotFound:
        abort(404)
    return render_template(
        "admin/account.html", detail=detail, before=before, kind_labels=KIND_LABELS
    )
