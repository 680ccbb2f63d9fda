"""The console's words and steps through the real app: codes worded in both languages,
the most urgent kind first, a mass action confirmed on a page that counts what it
touches, an account's actions each audited, the accounts page before any search."""

from __future__ import annotations

import datetime as dt
import json
import re

from flask.testing import FlaskClient
from sqlalchemy import select, update

from auth.models import Account, AccountStatus, AuditEvent, Finding, WebSession, utcnow
from auth.services import Services
from auth.web.factory import create_app
from tests import test_admin_console as console
from tests.test_admin_console import ADMIN, USER, add_findings, csrf, events, make_account, sign_in

# The console tests' fixtures: the app's services, a client, an administrator signed in.
site, web, admin_id, admin = console.site, console.web, console.admin_id, console.admin


def post(client: FlaskClient, path: str, **data: object) -> object:
    return client.post(path, data={"csrf_token": csrf(client, "/admin/findings"), **data})


def test_a_mass_action_first_counts_what_it_touches_and_changes_nothing(
    admin: FlaskClient, site: Services
) -> None:
    a, b = make_account(site, USER), make_account(site, "luc@infirmier.example")
    ids = add_findings(site, a, ("email_in_breach", "Forum"), ("password_in_breach", "Forum"))
    ids += add_findings(site, b, ("email_in_breach", "Forum"))
    page = post(admin, "/admin/findings", action="reset", finding=[str(i) for i in ids])
    assert page.status_code == 200  # type: ignore[attr-defined]
    text = page.get_data(as_text=True)  # type: ignore[attr-defined]
    assert "3 open findings selected" in text and "2 accounts touched" in text
    assert 'name="confirmed" value="1"' in text and 'name="csrf_token"' in text
    assert "Force a password reset: 2 accounts" in text and 'id="cancel"' in text
    with site.db.session() as s:
        assert {x.status for x in s.execute(select(Account)).scalars()} == {AccountStatus.ACTIVE}
    assert events(site, "finding:acted") == []

    confirmed = post(
        admin, "/admin/findings", action="reset", confirmed="1", finding=[str(i) for i in ids]
    )
    assert confirmed.status_code == 302  # type: ignore[attr-defined]
    flashed = admin.get("/admin/findings").get_data(as_text=True)
    assert "Password reset forced for 2 accounts." in flashed


def test_select_all_acts_on_every_finding_the_filters_match_on_every_page(
    admin: FlaskClient, site: Services
) -> None:
    user = make_account(site, USER)
    ids = add_findings(site, user, *[("email_in_breach", f"B{i}") for i in range(55)])
    add_findings(site, user, ("valid_credential", "Other"))
    page = post(admin, "/admin/findings", action="mfa", all="1", kind="email_in_breach")
    text = page.get_data(as_text=True)  # type: ignore[attr-defined]
    assert "55 open findings selected" in text and "1 account touched" in text
    assert set(map(int, re.findall(r'name="finding" value="(\d+)"', text))) == set(ids)


def test_the_most_urgent_kind_comes_first_and_is_marked(admin: FlaskClient, site: Services) -> None:
    user = make_account(site, USER)
    add_findings(site, user, ("email_in_breach", "Forum"))
    (urgent,) = add_findings(site, user, ("valid_credential", "Old"))
    with site.db.session() as s:  # the urgent one is the oldest evidence
        s.execute(update(Finding).where(Finding.id == urgent).values(last_seen=Finding.first_seen))
    add_findings(site, user, ("password_in_breach", "New"))
    page = admin.get("/admin/findings").get_data(as_text=True)
    rows = re.findall(r'<tr data-finding="(\d+)" data-kind="([a-z_]+)"', page)
    assert rows[0] == (str(urgent), "valid_credential")
    assert f'<tr data-finding="{urgent}" data-kind="valid_credential" class="urgent">' in page
    assert '<strong class="badge">Urgent</strong> Leaked password still works' in page


def test_codes_are_worded_in_french_with_the_administrator_named(
    admin: FlaskClient, site: Services, admin_id: int
) -> None:
    user = make_account(site, USER)
    (fid,) = add_findings(site, user, ("valid_credential", "Webmail2022"))
    post(admin, "/admin/findings", action="reset", confirmed="1", finding=[str(fid)], reason="vu")
    page = admin.get(
        f"/admin/accounts/{user}", headers={"Accept-Language": "fr", "Cookie": "bg_lang=fr"}
    ).get_data(as_text=True)
    assert '<html lang="fr">' in page
    assert "Réinitialisation exigée" in page and "Mot de passe fuité encore valide" in page
    assert f"Administrateur {ADMIN}" in page and f"admin:{admin_id}" not in page
    assert "reset_required" not in page.split("<main")[1].replace('data-action="', "")
    assert "changed: False" not in page and "<dt>Compte modifié</dt><dd>Oui</dd>" in page
    assert '<q class="their-words"' in page and "vu</q>" in page


def test_the_account_page_actions_are_audited_with_the_administrator(
    admin: FlaskClient, site: Services, admin_id: int, web: FlaskClient
) -> None:
    user = make_account(site, USER)
    with site.db.session() as s:
        s.execute(
            update(Account)
            .where(Account.id == user)
            .values(status=AccountStatus.LOCKED, failed_logins=9)
        )
    path = f"/admin/accounts/{user}"
    page = admin.get(path).get_data(as_text=True)
    for action in ("reset", "mfa", "unlock", "sessions"):
        assert f'id="act-{action}"' in page
    assert post(admin, path, action="unlock").status_code == 302  # type: ignore[attr-defined]
    assert post(admin, path, action="mfa").status_code == 302  # type: ignore[attr-defined]
    assert "Locked" not in admin.get(path).get_data(as_text=True).split("<dd>")[1]
    assert post(admin, path, action="sessions").status_code == 302  # type: ignore[attr-defined]
    assert post(admin, path, action="reset", reason="appel du cabinet").status_code == 302  # type: ignore[attr-defined]
    with site.db.session() as s:
        account = s.get(Account, user)
        assert account is not None
        assert account.status == AccountStatus.RESET_REQUIRED and account.mfa_required
        assert account.failed_logins == 0
        trail = s.execute(
            select(AuditEvent.action, AuditEvent.actor, AuditEvent.details)
            .where(AuditEvent.target == f"account:{user}", AuditEvent.actor == f"admin:{admin_id}")
            .order_by(AuditEvent.seq)
        ).all()
    assert [t.action for t in trail] == [
        "account:unlocked",
        "account:updated",
        "session:ended_everywhere",
        "account:reset:forced",
    ]
    assert json.loads(trail[-1].details).get("note", json.loads(trail[-1].details).get("reason"))
    assert post(admin, path, action="explode").status_code == 400  # type: ignore[attr-defined]
    assert admin.get("/admin").status_code == 200  # the administrator's own session stands


def test_ending_an_accounts_sessions_signs_its_browsers_out(
    admin: FlaskClient, site: Services, web: FlaskClient
) -> None:
    user = make_account(site, USER)
    other = create_app(registry=site).test_client()
    sign_in(other, USER)
    assert other.get("/account/security").status_code == 200
    post(admin, f"/admin/accounts/{user}", action="sessions")
    assert other.get("/account/security").status_code == 302
    with site.db.session() as s:
        assert s.execute(select(WebSession).where(WebSession.account_id == user)).first() is None


def test_the_accounts_page_lists_the_most_recently_exposed_before_any_search(
    admin: FlaskClient, site: Services
) -> None:
    old, new = make_account(site, USER), make_account(site, "luc@infirmier.example")
    make_account(site, "clean@example.org")
    (f_old,) = add_findings(site, old, ("email_in_breach", "Forum"))
    add_findings(site, new, ("email_in_breach", "Forum"))
    with site.db.session() as s:
        earlier = utcnow() - dt.timedelta(days=3)
        s.execute(update(Finding).where(Finding.id == f_old).values(last_seen=earlier))
    page = admin.get("/admin/accounts").get_data(as_text=True)
    assert "Most recently exposed accounts" in page
    listed = re.findall(r'<tr data-account="(\d+)">', page)
    assert listed == [str(new), str(old)]  # the clean account is not among them
    locked = admin.get("/admin/accounts?status=locked").get_data(as_text=True)
    assert "No account to show." in locked
    bad = admin.get("/admin/accounts?status=nope")
    assert bad.status_code == 400 and 'id="status-error"' in bad.get_data(as_text=True)


def test_an_administrator_finds_the_console_from_the_account_security_page(
    admin: FlaskClient, web: FlaskClient, site: Services
) -> None:
    page = admin.get("/account/security").get_data(as_text=True)
    assert '<p id="console-link"><a href="/admin">Security console</a></p>' in page


def test_a_person_who_is_not_an_administrator_sees_no_console_link(
    web: FlaskClient, site: Services
) -> None:
    make_account(site, USER)
    sign_in(web, USER)
    assert 'id="console-link"' not in web.get("/account/security").get_data(as_text=True)
