"""The security console through the real app: who may open it, the dashboard's figures,
the findings table's filters and actions (each audited, CSRF-protected), an account's
page, and the commands that make an administrator."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re

import pytest
from babel.dates import format_skeleton
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select, update

from auth import accounts, audit
from auth.cli import main
from auth.config import Settings
from auth.console import admins
from auth.mfa import factors
from auth.models import (
    Account,
    AccountStatus,
    AuditEvent,
    Finding,
    FindingStatus,
    MfaFactor,
    Reset,
    utcnow,
)
from auth.services import Services, build
from auth.signin import bans
from auth.web.factory import create_app
from tests.finding_helpers import open_finding
from tests.totp_helpers import enroll_totp, next_code

PASSWORD = "Correct-Horse-Battery-42"
ADMIN = "secu@chu.example"
USER = "claire@cabinet.example"


@pytest.fixture
def site(settings: Settings) -> Services:
    return build(
        dataclasses.replace(
            settings, login_rate_limit="1000 per minute", mfa_ip_rate_limit="1000 per minute"
        )
    )


@pytest.fixture
def web(site: Services) -> FlaskClient:
    return create_app(registry=site).test_client()


def make_account(site: Services, email: str, *, admin: bool = False) -> int:
    with site.db.session() as s:
        account = accounts.create(
            s,
            email=email,
            name="Dr Test",
            password=PASSWORD,
            hasher=site.hasher,
            actor=audit.Actor.cli("t"),
            now=utcnow(),
        )
        if admin:
            admins.set_admin(s, email=email, admin=True, actor=audit.Actor.cli("t"), now=utcnow())
        return account.id


def csrf(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


def sign_in(client: FlaskClient, email: str, code: str | None = None) -> None:
    """Password, then the second step when a code is given (as a person does)."""
    token = csrf(client)
    answer = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
    if code is not None:
        assert answer.headers["Location"] == "/login/mfa"
        token = csrf(client, "/login/mfa")  # the pending sign-in is a fresh session
        done = client.post("/login/mfa", data={"code": code, "csrf_token": token})
        assert done.status_code == 302, done.get_data(as_text=True)[:300]


@pytest.fixture
def admin_id(site: Services) -> int:
    return make_account(site, ADMIN, admin=True)


@pytest.fixture
def admin(web: FlaskClient, site: Services, admin_id: int) -> FlaskClient:
    """The web client signed in as an administrator, with a TOTP code."""
    secret = enroll_totp(site, admin_id)
    sign_in(web, ADMIN, next_code(secret))
    return web


def add_findings(site: Services, account_id: int, *specs: tuple[str, str]) -> list[int]:
    """Open findings (kind, breach) for an account, as a scan records them."""
    now = utcnow()
    with site.db.session() as s:
        return [open_finding(s, account_id, kind, breach, now) for kind, breach in specs]


def act(client: FlaskClient, action: str, ids: list[int], reason: str = "", **extra: str) -> object:
    """The confirmed form (the confirmation page's own post); `confirmed=""` asks first."""
    data: dict[str, object] = {
        "action": action,
        "finding": [str(i) for i in ids],
        "reason": reason,
        "csrf_token": csrf(client, "/admin/findings"),
        "confirmed": "1",
        **extra,
    }
    return client.post("/admin/findings", data=data)


def events(site: Services, action: str) -> list[AuditEvent]:
    with site.db.session() as s:
        rows = s.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars().all()
        s.expunge_all()
        return list(rows)


# --- who may open it ----------------------------------------------------------------------


def test_without_a_session_the_console_sends_to_the_sign_in_page(web: FlaskClient) -> None:
    for path in ("/admin", "/admin/findings", "/admin/accounts/1"):
        answer = web.get(path)
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith("/login?next=/admin")


def test_a_signed_in_person_who_is_not_an_administrator_is_refused(
    web: FlaskClient, site: Services
) -> None:
    user = make_account(site, USER)
    secret = enroll_totp(site, user)
    sign_in(web, USER, next_code(secret))  # even with a second factor
    for path in ("/admin", "/admin/findings", "/admin/accounts"):
        answer = web.get(path)
        assert answer.status_code == 403
        assert "for security administrators only" in answer.get_data(as_text=True)


def test_an_administrator_without_a_second_factor_is_refused_and_told_to_enroll_one(
    web: FlaskClient, admin_id: int
) -> None:
    sign_in(web, ADMIN)  # no factor: the password alone opens a session
    answer = web.get("/admin")
    assert answer.status_code == 403
    page = answer.get_data(as_text=True)
    assert "needs a sign-in with a second factor" in page
    assert 'href="/account/security"' in page and 'id="step-up"' not in page
    assert "Security console" in page and "chart-findings" not in page


def test_an_administrator_who_just_enrolled_a_factor_is_asked_for_it_at_once(
    web: FlaskClient, site: Services, admin_id: int
) -> None:
    sign_in(web, ADMIN)
    secret = enroll_totp(site, admin_id)
    refused = web.get("/admin")
    assert refused.status_code == 403  # this session never saw a second factor
    assert 'id="step-up"' in refused.get_data(as_text=True)
    token = csrf(web, "/account/security")
    assert web.post("/admin/second-factor", data={}).status_code == 400  # CSRF first
    step = web.post("/admin/second-factor", data={"csrf_token": token})
    assert (step.status_code, step.headers["Location"]) == (302, "/login/mfa")
    assert web.get("/account/security").status_code == 302  # the old session is gone
    done = web.post(
        "/login/mfa", data={"code": next_code(secret), "csrf_token": csrf(web, "/login/mfa")}
    )
    assert (done.status_code, done.headers["Location"]) == (302, "/admin")
    assert web.get("/admin").status_code == 200


def test_the_second_step_from_the_console_is_refused_to_a_non_administrator(
    web: FlaskClient, site: Services
) -> None:
    make_account(site, USER)
    sign_in(web, USER)
    token = csrf(web, "/account/security")
    assert web.post("/admin/second-factor", data={"csrf_token": token}).status_code == 403


def test_a_session_opened_with_a_factor_loses_the_console_when_the_factor_is_removed(
    admin: FlaskClient, site: Services, admin_id: int
) -> None:
    assert admin.get("/admin").status_code == 200
    with site.db.session() as s:
        factor = s.execute(select(MfaFactor).where(MfaFactor.account_id == admin_id)).scalar_one()
        account = s.get(Account, admin_id)
        assert account is not None
        factors.remove(
            s,
            account=account,
            factor_id=factor.id,
            required_by_policy=False,
            actor=audit.Actor.account(admin_id),
            now=utcnow(),
        )
    assert admin.get("/admin").status_code == 403


def test_revoking_the_administrator_flag_closes_the_console_at_once(
    admin: FlaskClient, site: Services
) -> None:
    assert admin.get("/admin/findings").status_code == 200
    with site.db.session() as s:
        admins.set_admin(s, email=ADMIN, admin=False, actor=audit.Actor.cli("t"), now=utcnow())
    assert admin.get("/admin/findings").status_code == 403


# --- the dashboard ------------------------------------------------------------------------


def test_the_dashboard_draws_its_charts_from_the_database(
    admin: FlaskClient, site: Services, admin_id: int
) -> None:
    user = make_account(site, USER)
    other = make_account(site, "luc@infirmier.example")
    add_findings(site, user, ("valid_credential", "Webmail2022"), ("email_in_breach", "Forum"))
    add_findings(site, other, ("email_in_breach", "Forum"))
    now = utcnow()
    with site.db.session() as s:
        s.add(Reset(account_id=user, reset_key="manual", reason="", actor="cli:t", created_at=now))
        bans.add(
            s, "203.0.113.7", reason="robot", expires_at=None, actor=audit.Actor.cli("t"), now=now
        )
        s.execute(update(Account).where(Account.id == other).values(status=AccountStatus.LOCKED))
        audit.append(
            s,
            [
                audit.Event(
                    audit.Actor.policy("login"), audit.Action.ACCOUNT_LOCKED, f"account:{other}"
                )
            ],
            now=now,
        )
    answer = admin.get("/admin")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    for chart in ("chart-findings", "chart-resets", "chart-coverage", "chart-refusals"):
        assert f'id="{chart}"' in page and f'id="{chart}-table"' in page
    assert 'role="img"' in page and "<script" not in page and 'style="' not in page
    # Accounts with open findings by kind: 1 valid credential, 2 e-mails in a breach.
    cells = re.sub(r' data-label="[^"]*"', "", page)  # each value's label, for phones
    assert re.search(r'<th scope="row">Leaked password still works</th><td>1</td>', cells)
    assert re.search(r'<th scope="row">E-mail address in a breach</th><td>2</td>', cells)
    today = format_skeleton("MMMd", now.date(), locale="en")  # "Dec 7"
    assert re.search(rf'<th scope="row">{today}</th><td>1</td><td>0</td>', cells)  # resets
    assert re.search(r'<th scope="row">Locked accounts</th><td>1</td>', cells)
    assert re.search(r'<th scope="row">Bans \(by hand\)</th><td>1</td>', cells)
    # Coverage: 3 accounts, the administrator's TOTP only (both, webauthn, totp, none).
    assert re.search(
        rf'<th scope="row">{today}</th><td>0</td><td>0</td><td>1</td><td>2</td>', cells
    )
    totals = page[page.index('id="totals"') :]
    tile = (
        r'<a href="([^"]+)"><span class="tile-label">{}</span> <span class="tile-value">{}</span>'
    )
    assert re.search(tile.format("Accounts", 3), totals)
    assert re.search(tile.format("Locked", 1), totals).group(1) == "/admin/accounts?status=locked"  # type: ignore[union-attr]
    urgent = totals[totals.index('id="tile-urgent"') :]
    assert urgent.index("Leaked password still works") < urgent.index("Exposed accounts")
    assert 'href="/admin/findings?kind=valid_credential&amp;status=open"' in urgent[:300]


# --- the findings table -------------------------------------------------------------------


def finding_ids_on(page: str) -> set[int]:
    return {int(m) for m in re.findall(r'data-finding="(\d+)"', page)}


def test_findings_are_filtered_by_kind_breach_and_status(
    admin: FlaskClient, site: Services
) -> None:
    user = make_account(site, USER)
    valid, forum, webmail = add_findings(
        site,
        user,
        ("valid_credential", "Webmail2022"),
        ("email_in_breach", "Forum"),
        ("email_in_breach", "Webmail2022"),
    )
    with site.db.session() as s:
        s.execute(update(Finding).where(Finding.id == forum).values(status=FindingStatus.RESOLVED))

    def shown(query: str) -> set[int]:
        answer = admin.get(f"/admin/findings{query}")
        assert answer.status_code == 200
        return finding_ids_on(answer.get_data(as_text=True))

    assert shown("") == {valid, webmail}  # open ones by default
    assert shown("?status=any") == {valid, forum, webmail}
    assert shown("?status=resolved") == {forum}
    assert shown("?kind=email_in_breach") == {webmail}
    assert shown("?kind=email_in_breach&status=any") == {forum, webmail}
    assert shown("?breach=Webmail2022") == {valid, webmail}
    assert shown("?breach=Webmail2022&kind=valid_credential") == {valid}


def test_a_bad_filter_is_refused_with_the_error_next_to_its_field(admin: FlaskClient) -> None:
    for query, field in (("kind=nope", "kind"), ("status=gone", "status"), ("page=0", "page")):
        answer = admin.get(f"/admin/findings?{query}")
        assert answer.status_code == 400
        assert f'<p class="field-error" role="alert" id="{field}-error">' in answer.get_data(
            as_text=True
        )


def test_findings_are_paginated(admin: FlaskClient, site: Services) -> None:
    user = make_account(site, USER)
    ids = add_findings(site, user, *[("email_in_breach", f"Breach{i:02d}") for i in range(55)])
    first = admin.get("/admin/findings").get_data(as_text=True)
    second = admin.get("/admin/findings?page=2").get_data(as_text=True)
    assert "55 findings, page 1 of 2." in first and 'rel="next"' in first
    assert len(finding_ids_on(first)) == 50 and len(finding_ids_on(second)) == 5
    assert finding_ids_on(first) | finding_ids_on(second) == set(ids)


def test_force_reset_on_a_selection_resets_those_accounts_and_audits_the_administrator(
    admin: FlaskClient, site: Services, admin_id: int
) -> None:
    user, other = make_account(site, USER), make_account(site, "luc@infirmier.example")
    (chosen,) = add_findings(site, user, ("valid_credential", "Webmail2022"))
    (untouched,) = add_findings(site, other, ("valid_credential", "Webmail2022"))
    answer = act(admin, "reset", [chosen], "found in the Webmail leak", kind="valid_credential")
    assert answer.status_code == 302  # type: ignore[attr-defined]
    assert answer.headers["Location"] == "/admin/findings?kind=valid_credential&status=open"  # type: ignore[attr-defined]
    flashed = admin.get(answer.headers["Location"]).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Password reset forced for 1 account." in flashed
    with site.db.session() as s:
        assert s.get(Account, user).status == AccountStatus.RESET_REQUIRED  # type: ignore[union-attr]
        assert s.get(Account, other).status == AccountStatus.ACTIVE  # type: ignore[union-attr]
        done, left = s.get(Finding, chosen), s.get(Finding, untouched)
        assert done is not None and left is not None
        assert (done.action, done.acted_by) == ("reset", f"admin:{admin_id}")
        assert left.action is None
        reset = s.execute(select(Reset).where(Reset.account_id == user)).scalar_one()
        assert reset.reason == "found in the Webmail leak" and reset.actor == f"admin:{admin_id}"
    forced = events(site, "account:reset:forced")
    assert [(e.actor, e.target) for e in forced] == [(f"admin:{admin_id}", f"account:{user}")]
    acted = events(site, "finding:acted")
    assert [(e.actor, e.target) for e in acted] == [(f"admin:{admin_id}", f"account:{user}")]
    assert json.loads(acted[0].details)["findings"] == [chosen]


def test_require_a_second_factor_on_a_selection_flags_those_accounts_and_audits(
    admin: FlaskClient, site: Services, admin_id: int
) -> None:
    user, other = make_account(site, USER), make_account(site, "luc@infirmier.example")
    a = add_findings(site, user, ("email_in_breach", "Forum"))
    b = add_findings(site, other, ("email_in_breach", "Forum"))
    assert act(admin, "mfa", a + b).status_code == 302  # type: ignore[attr-defined]
    with site.db.session() as s:
        for account_id, fid in ((user, a[0]), (other, b[0])):
            account, finding = s.get(Account, account_id), s.get(Finding, fid)
            assert account is not None and finding is not None
            assert account.mfa_required and account.status == AccountStatus.ACTIVE
            assert (finding.action, finding.status) == ("mfa", FindingStatus.OPEN)
    acted = events(site, "finding:acted")
    assert {e.target for e in acted} == {f"account:{user}", f"account:{other}"}
    assert {e.actor for e in acted} == {f"admin:{admin_id}"}


def test_dismissing_needs_a_reason_and_keeps_it(
    admin: FlaskClient, site: Services, admin_id: int
) -> None:
    user = make_account(site, USER)
    ids = add_findings(site, user, ("email_in_breach", "Forum"), ("email_in_breach", "Other"))
    unreadable = act(admin, "dismiss", ids, "test\x00address")  # PostgreSQL: no NUL
    assert unreadable.status_code == 400  # type: ignore[attr-defined]
    assert "cannot hold control characters" in unreadable.get_data(as_text=True)  # type: ignore[attr-defined]
    refused = act(admin, "dismiss", ids, "   ")
    assert refused.status_code == 400  # type: ignore[attr-defined]
    page = refused.get_data(as_text=True)  # type: ignore[attr-defined]
    assert 'id="reason-error">Say why these findings are dismissed.' in page
    assert 'aria-describedby="reason-error"' in page  # next to its field
    assert page.count("checked") == 2  # the selection survives the error
    with site.db.session() as s:
        assert {f.status for f in s.execute(select(Finding)).scalars()} == {FindingStatus.OPEN}
    assert events(site, "finding:acted") == []

    assert act(admin, "dismiss", ids[:1], "test address of the practice").status_code == 302  # type: ignore[attr-defined]
    with site.db.session() as s:
        dismissed, kept = s.get(Finding, ids[0]), s.get(Finding, ids[1])
        assert dismissed is not None and kept is not None
        assert dismissed.status == FindingStatus.DISMISSED
        assert (dismissed.note, dismissed.acted_by) == (
            "test address of the practice",
            f"admin:{admin_id}",
        )
        assert kept.status == FindingStatus.OPEN
    (event,) = events(site, "finding:acted")
    assert event.actor == f"admin:{admin_id}"
    assert json.loads(event.details)["reason"] == "test address of the practice"


def test_an_action_without_a_selection_or_with_an_unknown_name_names_the_field(
    admin: FlaskClient, site: Services
) -> None:
    user = make_account(site, USER)
    add_findings(site, user, ("email_in_breach", "Forum"))
    nothing = act(admin, "mfa", [])
    assert nothing.status_code == 400  # type: ignore[attr-defined]
    assert 'id="finding-error">Tick at least one' in nothing.get_data(as_text=True)  # type: ignore[attr-defined]
    unknown = act(admin, "delete", [1])
    assert unknown.status_code == 400  # type: ignore[attr-defined]
    assert 'id="action-error">' in unknown.get_data(as_text=True)  # type: ignore[attr-defined]
    assert events(site, "finding:acted") == []


def test_an_action_without_the_csrf_token_is_refused_and_changes_nothing(
    admin: FlaskClient, site: Services
) -> None:
    user = make_account(site, USER)
    ids = add_findings(site, user, ("valid_credential", "Webmail2022"))
    answer = admin.post("/admin/findings", data={"action": "reset", "finding": [str(ids[0])]})
    assert answer.status_code == 400
    assert "This form has expired" in answer.get_data(as_text=True)
    with site.db.session() as s:
        assert s.get(Account, user).status == AccountStatus.ACTIVE  # type: ignore[union-attr]
        assert s.get(Finding, ids[0]).action is None  # type: ignore[union-attr]


# --- accounts -----------------------------------------------------------------------------


def test_an_accounts_page_shows_its_factors_findings_resets_and_events_newest_first(
    admin: FlaskClient, site: Services
) -> None:
    user = make_account(site, USER)
    enroll_totp(site, user)
    (fid,) = add_findings(site, user, ("valid_credential", "Webmail2022"))
    act(admin, "reset", [fid], "seen in Webmail2022")
    page = admin.get(f"/admin/accounts/{user}").get_data(as_text=True)
    assert USER in page and "Reset required" in page and "reset_required" not in page
    assert re.search(r'<tr data-kind="totp">\s*<td data-label="Kind">Authenticator app', page)
    assert f'data-finding="{fid}"' in page
    assert '<q class="their-words"' in page and "seen in Webmail2022</q>" in page
    actions = re.findall(r'<tr data-action="([^"]+)">', page)
    assert actions[0] == "finding:acted" and actions[-1] == "account:created"
    assert "mfa:enrolled" in actions and "account:reset:forced" in actions


def test_an_accounts_audit_events_are_paged_by_sequence(admin: FlaskClient, site: Services) -> None:
    user = make_account(site, USER)
    with site.db.session() as s:
        audit.append(
            s,
            [
                audit.Event(
                    audit.Actor.cli("t"), audit.Action.ACCOUNT_UPDATED, f"account:{user}", {"n": i}
                )
                for i in range(30)
            ],
            now=utcnow(),
        )
    first = admin.get(f"/admin/accounts/{user}").get_data(as_text=True)
    seqs = [int(s) for s in re.findall(r'<td data-label="#">(\d+)</td>', first)]
    assert len(seqs) == 25 and seqs == sorted(seqs, reverse=True)
    older = re.search(rf'href="/admin/accounts/{user}\?before=(\d+)"', first)
    assert older
    second = admin.get(f"/admin/accounts/{user}?before={older.group(1)}").get_data(as_text=True)
    rest = [int(s) for s in re.findall(r'<td data-label="#">(\d+)</td>', second)]
    assert len(rest) == 6 and max(rest) < min(seqs)  # 30 updates + account:created
    assert "?before=" not in second.split("Newest events")[-1]
    assert admin.get(f"/admin/accounts/{user}?before=x").status_code == 400
    assert admin.get("/admin/accounts/999999").status_code == 404


def test_accounts_are_found_by_part_of_their_email(admin: FlaskClient, site: Services) -> None:
    user = make_account(site, USER)
    make_account(site, "luc@infirmier.example")
    page = admin.get("/admin/accounts?email=CABINET").get_data(as_text=True)
    assert f'href="/admin/accounts/{user}"' in page and "luc@" not in page
    none = admin.get("/admin/accounts?email=100%25_").get_data(as_text=True)
    assert "No account matches" in none  # % and _ are matched literally


# --- administrators from the command line -------------------------------------------------


def test_accounts_create_admin_and_accounts_admin_grant_and_revoke_the_console(
    runner: CliRunner, registry: Services
) -> None:
    created = runner.invoke(main, ["accounts", "create", "secu@example.org", "--admin"])
    assert created.exit_code == 0, created.output
    assert "(administrator)" in created.output
    plain = runner.invoke(main, ["accounts", "create", "dr@example.org"])
    assert plain.exit_code == 0, plain.output
    granted = runner.invoke(main, ["accounts", "admin", "DR@example.org"])
    assert granted.exit_code == 0 and "dr@example.org is an administrator" in granted.output
    again = runner.invoke(main, ["accounts", "admin", "dr@example.org"])
    assert again.exit_code == 0 and "(unchanged)" in again.output
    revoked = runner.invoke(main, ["accounts", "admin", "secu@example.org", "--revoke"])
    assert revoked.exit_code == 0 and "not an administrator" in revoked.output
    unknown = runner.invoke(main, ["accounts", "admin", "nobody@example.org"])
    assert unknown.exit_code == 2 and "no account" in unknown.output
    with registry.db.session() as s:
        flags = dict(s.execute(select(Account.email, Account.admin)).all())
        updates = s.execute(
            select(AuditEvent.target, AuditEvent.details)
            .where(AuditEvent.action == "account:updated")
            .order_by(AuditEvent.seq)
        ).all()
    assert flags == {"secu@example.org": False, "dr@example.org": True}
    assert [json.loads(d)["admin"] for _, d in updates] == [True, True, False]  # no-op unrecorded


def test_demo_creates_an_administrator_and_says_how_to_reach_the_console(
    runner: CliRunner, registry: Services
) -> None:
    from auth.demo import ADMIN as DEMO_ADMIN

    first = runner.invoke(main, ["demo"])
    assert first.exit_code == 0, first.output
    assert "/admin" in first.output and "second factor" in first.output
    assert runner.invoke(main, ["demo"]).exit_code == 0  # twice: still one administrator
    with registry.db.session() as s:
        admins_now = s.execute(select(Account.email).where(Account.admin.is_(True))).scalars().all()
    assert admins_now == [DEMO_ADMIN[0]]


def test_the_dashboard_counts_today_s_coverage_when_it_is_read(
    admin: FlaskClient, site: Services
) -> None:
    from auth.mfa import census

    admin.get("/admin")
    with site.db.session() as s:
        today = census.on_or_before(s, dt.datetime.now(dt.UTC).date())
    assert today is not None and today.day == dt.datetime.now(dt.UTC).date()
    assert (today.accounts, today.totp) == (1, 1)
