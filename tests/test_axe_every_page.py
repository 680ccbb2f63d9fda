"""axe-core on every page a person meets, in French and in English, on a phone (390×844):
home, sign-in, forgotten password, a reset page (a valid link) and a dead link, the second
step and the lost-phone page, the account's security, an authenticator app's enrollment,
recovery codes, the confirmations (remove a factor, new recovery codes), the password
change, "this wasn't me" (a dead link, a live one, done) and a 404. Zero violations on
each; a failure names the page and its violations.

One Chromium (test_e2e_browser.py's), one context per language. The console has its own
axe test (test_console_browser.py).
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import re
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from auth import audit, notify
from auth.activity import not_me
from auth.models import Account, MfaFactor, SignInRecord
from auth.reset import forced
from tests import test_e2e_browser as e2e
from tests.test_e2e_browser import PASSWORD, Site, expect
from tests.test_i18n_browser import AXE, LOCALES, SIZES

pytestmark = pytest.mark.browser  # once, on SQLite (Makefile)

browser, site = e2e.browser, e2e.site  # the same fixtures: one Chromium, one served app

SIGNS_IN = "dr.axe@cabinet.example"
RESETS = "dr.reset@cabinet.example"


def reset_link(site: Site, language: str) -> str:
    """A valid /reset/… link for RESETS: a forced reset, its e-mail sent to the outbox."""
    site.add_account(RESETS)
    registry = site.registry
    with registry.db.session() as db:
        account = db.execute(select(Account).where(Account.email == RESETS)).scalar_one()
        account.language = language
        plan = forced.Plan("", "", None, require_mfa=True, actor=audit.Actor.policy("login"))
        forced.apply(
            db,
            [forced.Target(account.id)],
            plan,
            secret_key=registry.settings.secret_key,
            now=dt.datetime.now(dt.UTC),
        )
    settings = registry.settings
    notify.drain(registry.db, mailer=notify.mailer_from_settings(settings), settings=settings)
    [eml] = sorted(settings.outbox_path.glob("*.eml"))
    with eml.open("rb") as fh:
        message = email.parser.BytesParser(policy=email.policy.default).parse(fh)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    [link] = re.findall(rf"{re.escape(settings.public_url)}(/reset/\S+)", str(body.get_content()))
    return site.url + link  # the served app's address, not PUBLIC_URL's


def not_me_token(site: Site) -> str:
    """The "this wasn't me" token a new sign-in's e-mail carries, for the last sign-in."""
    with site.registry.db.session() as db:
        record = db.execute(select(SignInRecord).order_by(SignInRecord.id.desc())).scalars().first()
        assert record is not None
        return not_me.make_token(
            site.registry.settings.secret_key,
            sign_in_id=record.id,
            epoch=db.get_one(Account, record.account_id).session_epoch,
            expires=dt.datetime.now(dt.UTC) + not_me.LIFETIME,
        )


class Sweep:
    """One language's page, and the violations of every page it visits."""

    def __init__(self, page: Any, language: str) -> None:
        self.page = page
        self.language = language
        self.found: dict[str, list[tuple[str, str, str]]] = {}

    def check(self, name: str) -> None:
        expect(self.page.locator("html")).to_have_attribute("lang", self.language)
        self.page.add_script_tag(path=str(AXE))
        violations = self.page.evaluate("async () => (await axe.run()).violations")
        if violations:
            self.found[name] = [
                (v["id"], v["help"], v["nodes"][0]["html"][:160]) for v in violations
            ]

    def visit(self, path: str, name: str, status: int = 200) -> None:
        response = self.page.goto(path)
        assert response is not None and response.status == status, (name, response)
        assert self.page.url.endswith(path), (name, self.page.url)  # no redirect elsewhere
        self.check(name)

    def submit(self, selector: str) -> None:
        with self.page.expect_navigation():
            self.page.click(selector)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_page_a_person_meets_has_no_axe_violations(
    browser: Any, site: Site, language: str
) -> None:
    if not AXE.exists():
        pytest.skip("axe-core not installed: npm ci --prefix tests/js")
    link = reset_link(site, language)
    site.add_account(SIGNS_IN)
    with site.registry.db.session() as db:
        account = db.execute(select(Account).where(Account.email == SIGNS_IN)).scalar_one()
        account.language = language
    context = browser.new_context(
        base_url=site.url,
        viewport=SIZES["phone"],
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        bypass_csp=True,  # for axe-core's injected script alone
        locale=LOCALES[language],
    )
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        sweep = Sweep(page, language)

        sweep.visit("/", "home")
        sweep.visit("/forgot", "/forgot")
        sweep.visit(link, "/reset/<valid link>")
        expect(page.locator("#repeat")).to_be_attached()
        sweep.visit("/reset/not-a-real-link", "/reset/<dead link>", status=410)
        sweep.visit("/no-such-page", "404", status=404)
        sweep.visit("/login", "/login")

        page.fill("#email", SIGNS_IN)
        page.fill("#password", PASSWORD)
        sweep.submit("form[action='/login'] button[type=submit]")
        expect(page).to_have_url(e2e.SECURITY)
        sweep.check("/account/security")
        if language == "fr":  # webauthn.js's words come from the page, in its language
            box = page.locator("#webauthn-error")
            expect(box).to_have_attribute("data-aborted", "La demande a été annulée.")

        page.fill("#totp-name", "Phone")
        sweep.submit("form[action='/account/security/totp'] button[type=submit]")
        sweep.check("TOTP enrollment")
        secret = "".join(page.locator("#totp-secret").inner_text().split())
        page.fill("#code", pyotp.TOTP(secret).now())
        sweep.submit("form[action$='/confirm'] button[type=submit]")
        expect(page.locator("#codes-saved")).to_be_visible()
        sweep.check("recovery codes")
        page.check("#codes-saved")
        sweep.submit("form[action='/account/security/recovery/saved'] button[type=submit]")
        expect(page).to_have_url(e2e.SECURITY)

        with site.registry.db.session() as db:
            factor_id = db.execute(select(MfaFactor.id)).scalar_one()
        sweep.visit(f"/account/security/factors/{factor_id}/remove", "confirm: remove a factor")
        sweep.visit("/account/security/recovery", "confirm: new recovery codes")
        sweep.visit("/account/password", "/account/password")
        sweep.visit("/account/security/not-me", "confirm: this wasn't me")

        sweep.submit("form[action='/logout'] button[type=submit]")
        expect(page).to_have_url(e2e.LOGIN)
        page.fill("#email", SIGNS_IN)
        page.fill("#password", PASSWORD)
        sweep.submit("form[action='/login'] button[type=submit]")
        expect(page).to_have_url(e2e.LOGIN_MFA)
        sweep.check("/login/mfa")
        sweep.visit("/login/lost", "/login/lost")

        # "this wasn't me": a dead link, and the link of a new sign-in's e-mail, acted on
        sweep.visit("/not-me/1.0.0.forged", "/not-me/<dead link>", status=404)
        sweep.visit(f"/not-me/{not_me_token(site)}", "/not-me/<valid link>")
        sweep.submit("form[action^='/not-me/'] button[type=submit]")
        sweep.check("this wasn't me: done")

        assert sweep.found == {}, f"axe-core violations ({language}): {sweep.found}"
    finally:
        context.close()
