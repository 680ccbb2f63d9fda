"""The console's alerts through the real app: the list (newest first, filtered by kind and
open or closed), an alert's page with its accounts, addresses, evidence and the chart of the
activity that triggered it, closing it (CSRF, audited), the dashboard's tile, and who may
open any of it."""

from __future__ import annotations

import datetime as dt
import json
import re

from flask.testing import FlaskClient
from sqlalchemy import select

from auth import audit
from auth.activity import alerts
from auth.console import alerts as console_alerts
from auth.models import Alert, AlertKind, AuditEvent, utcnow
from auth.services import Services
from tests import test_admin_console as console
from tests.test_admin_console import USER, csrf, make_account, sign_in
from tests.totp_helpers import enroll_totp, next_code

site, web, admin_id, admin = console.site, console.web, console.admin_id, console.admin
FRENCH = {"Accept-Language": "fr", "Cookie": "bg_lang=fr"}
ENGLISH = {"Accept-Language": "en", "Cookie": "bg_lang=en"}


def raise_one(
    site: Services,
    kind: AlertKind,
    at: dt.datetime,
    *,
    accounts: list[int] = (),  # type: ignore[assignment]
    cause: str = "203.0.113.0/24",
    evidence: dict[str, object] | None = None,
) -> int:
    with site.db.session() as session:
        return alerts.raise_alert(
            session,
            kind=kind,
            cause=cause,
            accounts=accounts,
            addresses=["203.0.113.7"],
            evidence=evidence or {"timeline": [{"at": at.isoformat()}]},
            now=at,
            settings=site.settings,
        ).alert_id


def close(site: Services, alert_id: int) -> None:
    with site.db.session() as session:
        alerts.close_alert(session, alert_id, actor=audit.Actor.cli("t"), now=utcnow())


def listed(page: str) -> list[tuple[int, str]]:
    return [
        (int(i), k) for i, k in re.findall(r'<tr data-alert="(\d+)" data-kind="([a-z_]+)"', page)
    ]


def test_the_list_shows_open_alerts_newest_first_and_filters_by_kind_and_status(
    admin: FlaskClient, site: Services
) -> None:
    now = utcnow()
    old = raise_one(site, AlertKind.CREDENTIAL_STUFFING, now - dt.timedelta(hours=3))
    spray = raise_one(site, AlertKind.PASSWORD_SPRAY, now - dt.timedelta(hours=1), cause="w")
    block = raise_one(site, AlertKind.ACTIVITY_BLOCK, now, cause="account:1")
    close(site, old)

    page = admin.get("/admin/alerts", headers=ENGLISH).get_data(as_text=True)
    assert listed(page) == [(block, "activity_block"), (spray, "password_spray")]
    assert "Robot-like activity blocked" in page and "activity_block</" not in page
    assert "2 alerts." in page

    every = admin.get("/admin/alerts?status=any").get_data(as_text=True)
    assert [i for i, _ in listed(every)] == [block, spray, old]
    closed = admin.get("/admin/alerts?status=closed").get_data(as_text=True)
    assert listed(closed) == [(old, "credential_stuffing")]
    sprays = admin.get("/admin/alerts?status=any&kind=password_spray").get_data(as_text=True)
    assert listed(sprays) == [(spray, "password_spray")]
    assert '<option value="password_spray" selected>' in sprays


def test_a_bad_filter_is_refused_with_the_error_next_to_its_field(admin: FlaskClient) -> None:
    answer = admin.get("/admin/alerts?kind=everything", headers=ENGLISH)
    assert answer.status_code == 400
    assert 'id="kind-error"' in answer.get_data(as_text=True)


def test_the_alert_page_shows_its_accounts_addresses_evidence_and_activity_per_minute(
    admin: FlaskClient, site: Services
) -> None:
    claire = make_account(site, USER)
    luc = make_account(site, "luc@infirmier.example")
    at = dt.datetime(2026, 12, 7, 10, 0, 12, tzinfo=dt.UTC)
    timeline = [
        {"at": at.isoformat(), "count": 3},
        {"at": (at + dt.timedelta(seconds=30)).isoformat(), "count": 2},
        {"at": (at + dt.timedelta(minutes=3)).isoformat(), "count": 7, "decision": "block"},
    ]
    alert_id = raise_one(
        site,
        AlertKind.CREDENTIAL_STUFFING,
        at,
        accounts=[claire, luc],
        evidence={"failures": 12, "timeline": timeline},
    )

    page = admin.get(f"/admin/alerts/{alert_id}", headers=ENGLISH).get_data(as_text=True)

    assert "<h1>Credential stuffing</h1>" in page
    assert f'href="/admin/accounts/{claire}">{USER}</a>' in page
    assert f'href="/admin/accounts/{luc}">luc@infirmier.example</a>' in page
    assert "<code>203.0.113.7</code>" in page
    assert "<dt>Failures</dt><dd>12</dd>" in page
    assert 'id="chart-alert-activity"' in page and "Events per minute (UTC)" in page
    assert 'aria-label="Events per minute (UTC): Events, from 10:00 to 10:03;' in page
    # 10:00 holds 3 + 2, 10:01 and 10:02 nothing, 10:03 holds 7: every minute drawn
    assert re.findall(r'class="bar"[^>]*data-value="(\d+)"', page) == ["5", "7"]
    table = page.split('id="chart-alert-activity-table"')[1].split("</table>")[0]
    assert re.findall(r"<th scope=\"row\">([^<]+)</th><td[^>]*>(\d+)</td>", table) == [
        ("10:00", "5"),
        ("10:01", "0"),
        ("10:02", "0"),
        ("10:03", "7"),
    ]
    assert 'id="alert-timeline"' in page and "Decision" in page
    assert 'id="alert-close"' in page and 'name="csrf_token"' in page


def test_a_long_activity_is_counted_per_hour_and_an_empty_one_says_so(
    admin: FlaskClient, site: Services
) -> None:
    at = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)
    timeline = [{"at": (at + dt.timedelta(hours=h)).isoformat()} for h in (0, 0, 5, 9)]
    long = raise_one(site, AlertKind.PASSWORD_SPRAY, at, evidence={"timeline": timeline})
    page = admin.get(f"/admin/alerts/{long}", headers=ENGLISH).get_data(as_text=True)
    assert "Events per hour (UTC)" in page
    assert re.findall(r'class="bar"[^>]*data-value="(\d+)"', page) == ["2", "1", "1"]

    empty = raise_one(site, AlertKind.NOT_ME, at, cause="x", evidence={"timeline": []})
    page = admin.get(f"/admin/alerts/{empty}", headers=ENGLISH).get_data(as_text=True)
    assert "No activity recorded" in page


def test_activity_is_bucketed_in_the_narrowest_step_that_fits() -> None:
    at = dt.datetime(2026, 12, 7, 10, 7, tzinfo=dt.UTC)
    minutes = console_alerts.entries(
        [{"at": (at + dt.timedelta(minutes=m)).isoformat()} for m in (0, 29)]
    )
    assert console_alerts.activity(minutes).step == dt.timedelta(minutes=1)
    five = console_alerts.entries(
        [{"at": (at + dt.timedelta(minutes=m)).isoformat()} for m in (0, 30)]
    )
    spread = console_alerts.activity(five)
    assert spread.step == dt.timedelta(minutes=5)
    assert spread.buckets[0].start == dt.datetime(2026, 12, 7, 10, 5, tzinfo=dt.UTC)
    assert sum(b.count for b in spread.buckets) == 2
    junk = console_alerts.entries([{"at": "yesterday"}, "x", {"count": 3}, {"at": at.isoformat()}])
    assert [e.count for e in junk] == [1]


def test_closing_an_alert_needs_the_csrf_token_and_is_audited(
    admin: FlaskClient, site: Services, admin_id: int
) -> None:
    alert_id = raise_one(site, AlertKind.ACTIVITY_STEP_UP, utcnow())

    refused = admin.post(f"/admin/alerts/{alert_id}/close", data={})
    assert refused.status_code == 400
    token = csrf(admin, f"/admin/alerts/{alert_id}")
    done = admin.post(f"/admin/alerts/{alert_id}/close", data={"csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"] == f"/admin/alerts/{alert_id}"

    page = admin.get(f"/admin/alerts/{alert_id}", headers=ENGLISH).get_data(as_text=True)
    assert "Alert closed." in page and 'id="alert-close"' not in page
    with site.db.session() as s:
        assert s.get_one(Alert, alert_id).closed_at is not None
        [event] = s.execute(select(AuditEvent).where(AuditEvent.action == "alert:closed")).scalars()
    assert (event.actor, event.target) == (f"admin:{admin_id}", f"alert:{alert_id}")
    assert json.loads(event.details)["kind"] == "activity_step_up"
    again = admin.post(f"/admin/alerts/{alert_id}/close", data={"csrf_token": token})
    assert again.status_code == 302
    assert "already closed" in admin.get(f"/admin/alerts/{alert_id}").get_data(as_text=True)


def test_an_unknown_alert_is_not_found(admin: FlaskClient) -> None:
    assert admin.get("/admin/alerts/424242").status_code == 404
    token = csrf(admin, "/admin/alerts")
    assert admin.post("/admin/alerts/424242/close", data={"csrf_token": token}).status_code == 404


def test_the_dashboard_counts_open_alerts_and_links_to_them(
    admin: FlaskClient, site: Services
) -> None:
    raise_one(site, AlertKind.NEW_SIGN_IN, utcnow(), cause="a")
    closed = raise_one(site, AlertKind.NEW_SIGN_IN, utcnow(), cause="b")
    close(site, closed)
    page = admin.get("/admin", headers=ENGLISH).get_data(as_text=True)
    tile = page.split('id="tile-alerts"')[1].split("</li>")[0]
    assert 'href="/admin/alerts?status=open"' in tile
    assert (
        '<span class="tile-value">1</span>' in tile
        and "alarm" in page.split('id="tile-alerts"')[0][-80:]
    )
    assert 'href="/admin/alerts"' in page  # the console's menu


def test_the_alert_pages_speak_french(admin: FlaskClient, site: Services) -> None:
    alert_id = raise_one(site, AlertKind.CREDENTIAL_STUFFING, utcnow())
    listing = admin.get("/admin/alerts", headers=FRENCH).get_data(as_text=True)
    assert '<html lang="fr">' in listing and "Bourrage d’identifiants" in listing
    page = admin.get(f"/admin/alerts/{alert_id}", headers=FRENCH).get_data(as_text=True)
    assert "Fermer l’alerte" in page and "Événements par minute (UTC)" in page


def test_only_an_administrator_with_a_second_factor_opens_the_alerts(
    web: FlaskClient, site: Services
) -> None:
    alert_id = raise_one(site, AlertKind.NOT_ME, utcnow())
    anonymous = web.get("/admin/alerts")
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
    user = make_account(site, USER)
    sign_in(web, USER, next_code(enroll_totp(site, user)))
    for path in ("/admin/alerts", f"/admin/alerts/{alert_id}"):
        assert web.get(path).status_code == 403
    token = csrf(web, "/account/security")
    assert (
        web.post(f"/admin/alerts/{alert_id}/close", data={"csrf_token": token}).status_code == 403
    )
    with site.db.session() as s:
        assert s.get_one(Alert, alert_id).closed_at is None
    refused = web.get("/admin/alerts").get_data(as_text=True)
    assert "203.0.113.7" not in refused and "data-alert=" not in refused  # nothing of it shown


def test_an_alert_raised_by_the_guard_opens_with_its_evidence_worded_and_counted(
    admin: FlaskClient, site: Services
) -> None:
    """The guard's own evidence (a bool, strings, its per-minute counts), not a hand-made
    one: the page opens, in French, every fact named, the chart summing the look-ups."""
    from auth.activity.guard import ActivityReport, Guard
    from auth.activity.policy import Decision

    make_account(site, USER)
    guard, start, served = Guard(site), utcnow() - dt.timedelta(minutes=2), 0
    ruling = None
    for n in range(100):
        at = start + dt.timedelta(seconds=n / 2)
        report = ActivityReport(USER, "robot", "203.0.113.7", "patient_lookup", f"S{n}", at)
        ruling = guard.report(report, now=at)
        if ruling.decision is Decision.BLOCK:
            break
        served += 1
    assert ruling is not None and ruling.alert_id is not None

    response = admin.get(f"/admin/alerts/{ruling.alert_id}", headers=FRENCH)
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    assert "<dt>Réseau</dt>" in page and "<dt>Sujets exposés</dt>" in page
    for code in ("subjects_hour", "network_accounts", "exposed_subjects", "reasons"):
        assert f"<dt>{code}</dt>" not in page
    assert "<dd>Bloqué</dd>" in page and "<dd>block</dd>" not in page  # the decision, worded
    bars = re.findall(r'class="bar"[^>]*data-value="(\d+)"', page)
    assert sum(map(int, bars)) >= served + 1  # every look-up, and the blocked one's moment
