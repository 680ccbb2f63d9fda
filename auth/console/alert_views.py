"""The console's alert pages, on the console's blueprint (its administrator check and
words): /admin/alerts (the list), /admin/alerts/<id> (one alert, its chart) and
POST /admin/alerts/<id>/close (audited)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from babel import dates as babel_dates
from flask import abort, flash, redirect, render_template, request, url_for

from auth.activity import alerts as alert_records
from auth.console import actions, charts, labels
from auth.console import alerts as console_alerts
from auth.console.forms import FieldError
from auth.console.views import _admin, bp
from auth.errors import NotFound
from auth.models import utcnow
from auth.web.context import services
from auth.web.i18n import current_language, gettext


@bp.context_processor
def _open_alerts() -> dict[str, Any]:
    """`open_alerts()`: the dashboard's tile counts them when it is drawn, not on every page."""

    def count() -> int:
        with services().db.session() as session:
            return console_alerts.open_count(session)

    return {"open_alerts": count}


def _listing(filters: console_alerts.Filters, errors: dict[str, str]) -> str:
    with services().db.session() as session:
        rows = console_alerts.listing(session, filters)
    return render_template(
        "admin/alerts.html",
        rows=rows,
        filters=filters,
        kinds=list(labels.ALERT_KINDS),
        errors=errors,
    )


@bp.get("/alerts")
def alerts() -> Any:
    try:
        filters = console_alerts.parse_filters(request.args)
    except FieldError as exc:
        return _listing(console_alerts.Filters(), {exc.field: exc.message}), 400
    return _listing(filters, {})


def _bucket_label(bucket: console_alerts.Bucket, step: Any) -> str:
    skeleton = "MMMd" if step >= dt.timedelta(days=1) else "Hm"  # days: no hour to show
    return str(babel_dates.format_skeleton(skeleton, bucket.start, locale=current_language()))


def _step_words(step: Any) -> str:
    """The chart's title: how many minutes, hours or days a bar counts, in UTC."""
    minutes = int(step.total_seconds() // 60)
    if minutes < 60:
        return (
            gettext("Events per %(num)d minutes (UTC)", num=minutes)
            if minutes > 1
            else gettext("Events per minute (UTC)")
        )
    if minutes < 24 * 60:
        hours = minutes // 60
        return (
            gettext("Events per %(num)d hours (UTC)", num=hours)
            if hours > 1
            else gettext("Events per hour (UTC)")
        )
    if minutes > 24 * 60:
        return gettext("Events per week (UTC)")
    return gettext("Events per day (UTC)")


def _chart(detail: console_alerts.Detail) -> charts.Figure:
    activity = detail.activity
    title = _step_words(activity.step)
    times = [_bucket_label(b, activity.step) for b in activity.buckets]
    span = gettext("from %(first)s to %(last)s", first=times[0], last=times[-1]) if times else ""
    words = charts.Words(
        gettext("No activity recorded"), gettext("Time (UTC)"), gettext("Events"), span
    )
    return charts.grouped_bars(
        "chart-alert-activity",
        title,
        times,
        [
            charts.Series(
                gettext("Events"), tuple(b.count for b in activity.buckets), charts.PALETTE[5]
            )
        ],
        label_header=gettext("Time (UTC)"),
        words=words,
    )


@bp.get("/alerts/<int:alert_id>")
def alert(alert_id: int) -> Any:
    try:
        with services().db.session() as session:
            detail = console_alerts.detail(session, alert_id)
    except NotFound:
        abort(404)
    return render_template("admin/alert.html", detail=detail, figure=_chart(detail))


@bp.post("/alerts/<int:alert_id>/close")
def alert_close(alert_id: int) -> Any:
    """Close the alert (audited, the administrator as the actor), then back to its page."""
    try:
        with services().db.session() as session:
            closed = alert_records.close_alert(
                session, alert_id, actor=actions.admin_actor(_admin().id), now=utcnow()
            )
    except NotFound:
        abort(404)
    flash(gettext("Alert closed.") if closed else gettext("This alert was already closed."))
    return redirect(url_for("admin.alert", alert_id=alert_id))
