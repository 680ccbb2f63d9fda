"""The security console: /admin (dashboard), /admin/findings (filter, act on a selection),
/admin/accounts (search) and /admin/accounts/<id> (one account, its trail).

Every page wants a signed-in administrator whose session was opened with a second factor
and who still has one: a leaked administrator password alone opens nothing here. Pages
are plain HTML forms and server-drawn SVG, so they work without JavaScript.
"""

from __future__ import annotations

from typing import Any

from babel import dates as babel_dates
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from auth.console import accounts as console_accounts
from auth.console import actions, charts, labels
from auth.console import figures as stats
from auth.console import findings as console_findings
from auth.console.forms import FieldError
from auth.errors import NotFound
from auth.mfa import factors
from auth.models import Account, utcnow
from auth.web import session as web_session
from auth.web.context import services
from auth.web.i18n import current_language, gettext

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.context_processor
def _words() -> dict[str, Any]:
    return {"labels": labels, "gettext": gettext}


def _refused(reason: str, *, can_step_up: bool = False) -> tuple[str, int]:
    page = render_template("admin/refused.html", reason=reason, can_step_up=can_step_up)
    return page, 403


@bp.before_request
def require_admin() -> Response | tuple[str, int] | None:
    """Signed in, an administrator, a second factor passed at sign-in and still enrolled."""
    account = web_session.current_account()
    if account is None:
        return redirect(url_for("pages.login", next=request.full_path.rstrip("?")))
    if not account.admin:
        return _refused("not_admin")
    with services().db.session() as db:
        enrolled = bool(factors.active(db, account.id))
    if not enrolled:
        return _refused("no_second_factor")
    if not web_session.passed_second_factor():
        if request.endpoint == "admin.step_up" and request.method == "POST":
            return None
        return _refused("no_second_factor", can_step_up=True)
    g.admin = account
    return None


@bp.post("/second-factor")
def step_up() -> Response:
    """An administrator whose session was opened with the password alone, who has a factor
    now (just enrolled it): the second step, at once, then back to the console. The
    session is given up for a pending sign-in, as after a password, so only the factor
    check opens a session that carries it."""
    account = web_session.current_account()
    assert account is not None
    if web_session.passed_second_factor():
        return redirect(url_for("admin.dashboard"))
    web_session.open_pending(account, url_for("admin.dashboard"))
    return redirect(url_for("pages.login_mfa"))


def _admin() -> Account:
    account: Account = g.admin
    return account


# --- the dashboard ------------------------------------------------------------------------


def _day_label(day: Any) -> str:
    """A chart's day, short and in the reader's language: `11 août`, `Aug 11`."""
    return str(babel_dates.format_skeleton("MMMd", day, locale=current_language()))


def _figures(data: stats.Dashboard) -> list[charts.Figure]:
    days = [_day_label(r.day) for r in data.resets]
    cover_days = [_day_label(c.day) for c in data.coverage]
    last = data.last_day
    day_header = gettext("Day (UTC)")
    per_day = charts.Words(gettext("No data yet"), day_header, gettext("Resets"))
    return [
        charts.bar_chart(
            "chart-findings",
            gettext("Accounts with open findings, by kind"),
            [(labels.kind(k), n) for k, n in data.findings_by_kind],
            label_header=gettext("Kind"),
            value_header=gettext("Accounts"),
            colour=charts.PALETTE[5],
            words=charts.Words(gettext("No data yet"), gettext("Accounts")),
        ),
        charts.grouped_bars(
            "chart-resets",
            gettext("Password resets per day, last %(num)d days", num=len(days)),
            days,
            [
                charts.Series(
                    gettext("Issued"), tuple(r.issued for r in data.resets), charts.PALETTE[1]
                ),
                charts.Series(
                    gettext("Completed"),
                    tuple(r.completed for r in data.resets),
                    charts.PALETTE[0],
                ),
            ],
            label_header=day_header,
            words=per_day,
        ),
        charts.stacked_bars(
            "chart-coverage",
            gettext("Second-factor coverage per day (accounts)"),
            cover_days,
            [
                charts.Series(
                    gettext("Both"), tuple(c.both for c in data.coverage), charts.PALETTE[2]
                ),
                charts.Series("WebAuthn", tuple(c.webauthn for c in data.coverage), "#56B4E9"),
                charts.Series("TOTP", tuple(c.totp for c in data.coverage), charts.PALETTE[0]),
                charts.Series(gettext("None"), tuple(c.none for c in data.coverage), "#BBBBBB"),
            ],
            label_header=day_header,
            words=charts.Words(gettext("No data yet"), day_header, gettext("Accounts")),
        ),
        charts.bar_chart(
            "chart-refusals",
            gettext("Lockouts and bans, last 24 hours"),
            [
                (gettext("Locked accounts"), last.lockouts),
                (gettext("Second-factor locks"), last.mfa_locks),
                (gettext("Bans (automatic)"), last.bans_automatic),
                (gettext("Bans (by hand)"), last.bans_manual),
            ],
            label_header=gettext("Event"),
            value_header=gettext("Count"),
            colour=charts.PALETTE[3],
            words=charts.Words(gettext("No data yet"), gettext("Count")),
        ),
    ]


@bp.get("")
def dashboard() -> str:
    with services().db.connection() as conn:
        data = stats.dashboard(conn, now=utcnow())
    urgent = dict(data.findings_by_kind).get(labels.URGENT, 0)
    return render_template(
        "admin/dashboard.html",
        data=data,
        urgent=urgent,
        figures=_figures(data),
        admin=_admin(),
    )


# --- findings -----------------------------------------------------------------------------


def _findings_page(
    filters: console_findings.Filters, errors: dict[str, str] | None = None, **extra: Any
) -> str:
    with services().db.connection() as conn:
        page = console_findings.page(conn, filters)
        names = console_accounts.actor_names(conn, [r.acted_by for r in page.rows])
    return render_template(
        "admin/findings.html",
        page=page,
        kinds=console_findings.KINDS,
        statuses=console_findings.STATUSES,
        choices=actions.LABELS,
        actors=names,
        errors=errors or {},
        **extra,
    )


@bp.get("/findings")
def findings() -> Any:
    try:
        filters = console_findings.parse_filters(request.args)
    except FieldError as exc:
        return _findings_page(console_findings.Filters(), {exc.field: exc.message}), 400
    return _findings_page(filters)


@bp.post("/findings")
def findings_act() -> Any:
    """One action on the ticked findings (or on every finding the filters match): first a
    page that says how many findings and accounts it touches and asks to confirm; the
    confirmed form acts, then back to the same filtered list (post/redirect/get)."""
    form = request.form
    try:
        filters = console_findings.parse_filters(form)
    except FieldError:
        filters = console_findings.Filters()
    selected = form.getlist("finding")
    everything = form.get("all") == "1"
    reason = form.get("reason", "")
    try:
        choice = actions.parse_choice(form.get("action", ""))
        reason = actions.clean_reason(reason, choice)
        with services().db.connection() as conn:
            if everything:
                ids = console_findings.matching(conn, filters)
            else:
                ids = console_findings.parse_selection(selected)
            scope = console_findings.scope(conn, ids)
        if form.get("confirmed") != "1":
            return render_template(
                "admin/confirm.html",
                choice=choice,
                label=gettext(actions.LABELS[choice]),
                ids=ids,
                scope=scope,
                reason=reason,
                filters=filters,
            )
        outcome = actions.act(
            services(), admin_id=_admin().id, choice=choice, finding_ids=ids, reason=reason
        )
    except FieldError as exc:
        page = _findings_page(
            filters,
            {exc.field: exc.message},
            selected=set(selected),
            everything=everything,
            reason=reason,
        )
        return page, 400
    flash(outcome.message())
    return redirect(url_for("admin.findings", **filters.as_query()))


# --- accounts -----------------------------------------------------------------------------


@bp.get("/accounts")
def accounts() -> Any:
    query = request.args.get("email", "")
    without_factor = request.args.get("factor") == "none"
    try:
        status = console_accounts.parse_status(request.args.get("status"))
        with services().db.connection() as conn:
            found = console_accounts.listing(
                conn, query, status=status, without_factor=without_factor
            )
    except FieldError as exc:
        page = render_template(
            "admin/accounts.html",
            query=query,
            status="",
            without_factor=without_factor,
            found=None,
            errors={exc.field: exc.message},
        )
        return page, 400
    return render_template(
        "admin/accounts.html",
        query=query,
        status=status,
        without_factor=without_factor,
        found=found,
        errors={},
    )


def _account_page(account_id: int, before: int | None, **extra: Any) -> str:
    try:
        with services().db.connection() as conn:
            detail = console_accounts.detail(conn, account_id, before=before)
            actors = [e.actor for e in detail.events]
            actors += [f.acted_by for f in detail.findings] + [r.actor for r in detail.resets]
            names = console_accounts.actor_names(conn, actors)
    except NotFound:
        abort(404)
    return render_template(
        "admin/account.html",
        detail=detail,
        before=before,
        actors=names,
        account_actions=actions.ACCOUNT_LABELS,
        errors=extra.pop("errors", {}),
        **extra,
    )


@bp.get("/accounts/<int:account_id>")
def account(account_id: int) -> Any:
    try:
        before = console_accounts.parse_before(request.args.get("before"))
    except FieldError as exc:
        return render_template("base.html", error=exc.message), 400
    return _account_page(account_id, before)


@bp.post("/accounts/<int:account_id>")
def account_act(account_id: int) -> Any:
    """One action on this account (each audited with the administrator as the actor);
    back to its page with what happened."""
    reason = request.form.get("reason", "")
    try:
        choice = actions.parse_account_choice(request.form.get("action", ""))
        message = actions.act_on_account(
            services(), admin_id=_admin().id, account_id=account_id, choice=choice, reason=reason
        )
    except FieldError as exc:
        return _account_page(account_id, None, errors={exc.field: exc.message}, reason=reason), 400
    except NotFound:
        abort(404)
    flash(message)
    return redirect(url_for("admin.account", account_id=account_id))


# The alert pages' routes join this blueprint (its administrator check, its words).
from auth.console import alert_views  # noqa: E402, F401
