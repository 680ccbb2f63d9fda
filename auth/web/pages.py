"""HTML pages: sign-in, the second step, sign-out, and /account/security.

Views parse the form, call one domain function, and render. Every POST carries a CSRF
token (Flask-WTF's CSRFProtect, enabled in the factory).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from auth import audit, i18n
from auth.activity import not_me, signin_risk, user_agents
from auth.errors import InvalidInput, NotFound
from auth.mfa import factors, qr, recovery, totp, verify
from auth.models import Account, AccountStatus, utcnow
from auth.reset import complete
from auth.signin import lockout
from auth.signin.rules import Decision, Reason, SigninPolicy
from auth.web import session as web_session
from auth.web.context import services, signin
from auth.web.i18n import current_language, gettext, ngettext
from auth.web.reset_pages import refusal

# Domain errors say in English what went wrong; pages say it in the reader's language.
BAD_NAME = i18n.N_("A name has at most 100 characters, on one line.")
GONE = i18n.N_("This factor is no longer on your account.")

bp = Blueprint("pages", __name__)  # signing in: rate-limited per address
account_bp = Blueprint("account", __name__)  # /account/security, for a signed-in person

WRONG = i18n.N_("The e-mail address or the password is not right.")


@bp.get("/login")
def login() -> Any:
    if web_session.current_account() is not None:
        return redirect(url_for("account.security"))
    return render_template("login.html", next=request.args.get("next", ""))


REFUSED = {
    Reason.PASSWORD_BREACHED.value: i18n.N_(
        "Your password appears in a leak of stolen passwords, so it no longer signs in. "
        "We have sent you an e-mail with a link to choose a new one."
    ),
    Reason.RESET_PENDING.value: i18n.N_(
        "Your password must be changed before you can sign in: use the link in the e-mail "
        "we sent you."
    ),
}


@bp.post("/login")
def login_post() -> Any:
    """The same decision as the login hook (auth/signin/flow.py), shown as pages."""
    email, password = request.form.get("email", ""), request.form.get("password", "")
    next_url = web_session.safe_next(request.form.get("next"))
    answer = signin().login(
        email,
        password,
        ip=request.remote_addr or "",
        user_agent=request.headers.get("User-Agent", ""),
        via="page",
        continuation=False,  # the pending sign-in lives in the signed session cookie
    )
    verdict = answer.verdict
    if verdict.decision is Decision.DENY:
        error = gettext(WRONG)
        if Reason.BREACH_CHECK_FAILED in verdict.reasons:
            error = gettext("We cannot check passwords right now: try again in a few minutes.")
        return render_template("login.html", error=error, email=email, next=next_url or ""), 401
    if verdict.decision is Decision.RESET_REQUIRED:
        message = gettext(REFUSED[verdict.public_reasons[0]])
        return render_template("login.html", error=message, email=email, next=next_url or ""), 403
    assert answer.account_id is not None and answer.session_epoch is not None
    account = Account(id=answer.account_id, session_epoch=answer.session_epoch)
    if verdict.decision is Decision.MFA_REQUIRED:
        web_session.open_pending(account, next_url)
        return redirect(url_for("pages.login_mfa"))
    web_session.open_session(account, method="password")
    if verdict.decision is Decision.ENROLL_REQUIRED:
        flash(gettext("Your account must be protected by a second factor: add one now."))
        return redirect(url_for("account.security"))
    if verdict.enroll_by is not None:
        day = i18n.format_date(verdict.enroll_by, current_language(), length="long")
        flash(gettext("Add a second factor before %(day)s: it will be required.", day=day))
    return redirect(next_url or url_for("account.security"))


@bp.get("/login/mfa")
def login_mfa() -> Any:
    account = web_session.pending_account()
    if account is None:
        return redirect(url_for("pages.login"))
    with services().db.session() as db:
        kinds = factors.kinds(db, account.id)
        codes_left = recovery.remaining(db, account.id)
    recovery_mode = request.args.get("with") == "recovery"
    return render_template(
        "login_mfa.html",
        account=account,
        kinds=kinds,
        codes_left=codes_left,
        recovery=recovery_mode,
    )


@bp.post("/login/mfa")
def login_mfa_post() -> Any:
    account = web_session.pending_account()
    if account is None:
        flash(gettext("Your sign-in took too long: please start again."))
        return redirect(url_for("pages.login"))
    registry = services()
    code, now = request.form.get("code", ""), utcnow()

    def started(conn: Connection) -> None:
        audit.append(conn, [web_session.started(account, verify.kind_of(code))], now=now)
        signin_risk.known_network(conn, account.id, request.remote_addr or "", now)

    result = verify.verify_code(
        registry.db,
        account_id=account.id,
        code=code,
        keys=registry.keys,
        settings=registry.settings,
        actor=audit.Actor.account(account.id),
        now=now,
        # the sign-in is recorded with the check, in its transaction
        then=started,
    )
    if not result.ok:
        with registry.db.session() as db:
            kinds = factors.kinds(db, account.id)
        status = 429 if result.status is verify.CheckStatus.LOCKED else 401
        error = factor_message(result)
        recovery_mode = request.form.get("with") == "recovery"
        page = render_template(
            "login_mfa.html", account=account, kinds=kinds, error=error, recovery=recovery_mode
        )
        return page, status
    return _finish_mfa(account, result)


def factor_message(result: verify.FactorCheck) -> str:
    """What a second-factor check says to the person, in their language, from its status
    (the check's own `message` is English, for logs and the hook)."""
    if result.status is verify.CheckStatus.LOCKED and result.locked_until is not None:
        until = i18n.format_time(result.locked_until, current_language())
        return gettext("Too many failed attempts: try again after %(time)s.", time=until)
    if result.status is verify.CheckStatus.REPLAYED:
        return gettext("This code was already used: wait for the next one in your app.")
    if result.ok and result.recovery_left is not None:
        return ngettext(
            "Recovery code accepted. %(num)d recovery code left.",
            "Recovery code accepted. %(num)d recovery codes left.",
            result.recovery_left,
        )
    if result.ok:
        return ""
    if result.kind == "webauthn":
        return gettext(
            "Your security key or passkey was not accepted: try again, or use another factor."
        )
    return gettext("That code is not right.")


def _finish_mfa(account: Account, result: verify.FactorCheck) -> Any:
    from flask import session

    next_url = web_session.safe_next(session.get("next"))
    web_session.open_session(account, mfa=True)  # the sign-in was recorded with the check
    message = factor_message(result)
    if message:
        flash(message)
    return redirect(next_url or url_for("account.security"))


@bp.post("/login/cancel")
def login_cancel() -> Any:
    """Cancel at the second step: the half-way sign-in ends here."""
    web_session.close()
    return redirect(url_for("pages.login"))


@bp.get("/login/lost")
def lost_factor() -> Any:
    """What to do without the phone or key: recovery codes, or the support contact."""
    contact = services().settings.support_contact
    return render_template("lost_factor.html", contact=contact)


@bp.post("/logout")
def logout() -> Any:
    web_session.close()
    flash(gettext("You are signed out."))
    return redirect(url_for("pages.login"))


@account_bp.post("/account/security/sign-out-everywhere")
@web_session.login_required
def sign_out_everywhere() -> Any:
    account = web_session.current_account()
    assert account is not None
    web_session.close_everywhere(account)
    flash(gettext("You are signed out on every device."))
    return redirect(url_for("pages.login"))


@account_bp.post("/account/security/sign-out-others")
@web_session.login_required
def sign_out_others() -> Any:
    """End every other session of the account; this one goes on, as it was opened."""
    account = web_session.current_account()
    assert account is not None
    held = web_session.this_session()
    with services().db.connection() as conn:
        web_session.end_all(
            conn,
            account.id,
            actor=audit.Actor.account(account.id),
            now=utcnow(),
            details={"ip": request.remote_addr},
        )
        epoch = conn.execute(
            select(Account.session_epoch).where(Account.id == account.id)
        ).scalar_one()
    web_session.keep_this_session(account.id, epoch, held)
    flash(gettext("You are signed out on every other device. This one stays signed in."))
    return redirect(url_for("account.security"))


# --- /account/password ----------------------------------------------------------------------
# In `bp`, not `account_bp`: a POST takes the current password, so it shares the sign-in's
# per-address budget (the factory limits `bp`'s POSTs).

WRONG_CURRENT = i18n.N_("This is not your current password.")
LOCKED = i18n.N_(
    "Too many wrong passwords: your account is locked. Sign out, then use “Forgot your "
    "password?” on the sign-in page to choose a new one."
)


def _password_form(**errors: str) -> str:
    return render_template(
        "password_change.html",
        min_length=complete.MIN_LENGTH,
        max_length=complete.MAX_LENGTH,
        **errors,
    )


@bp.get("/account/password")
@web_session.login_required
def password_change() -> Any:
    return _password_form()


@bp.post("/account/password")
@web_session.login_required
def password_change_post() -> Any:
    """The current password first (a wrong one counts as a failed sign-in), then the rules
    of a reset; the new password ends every other session and this one goes on."""
    signed_in = web_session.current_account()
    assert signed_in is not None
    held = web_session.this_session()
    registry, now, form = services(), utcnow(), request.form
    with registry.db.session() as db:
        account = db.get(Account, signed_in.id)
        assert account is not None
        if account.status == AccountStatus.LOCKED:
            return _password_form(current_error=gettext(LOCKED)), 403
        if not registry.hasher.verify(account.password_hash, form.get("current", "")).ok:
            _count_wrong_password(db, account, now)
            return _password_form(current_error=gettext(WRONG_CURRENT)), 400
        new = form.get("password", "")
        problem = complete.check_new_password(
            new,
            form.get("repeat", ""),
            old_hash=account.password_hash,
            hasher=registry.hasher,
            checker=registry.checker,
        )
        if problem:
            return _password_form(new_error=refusal(problem)), 400
        actor = audit.Actor.account(account.id)
        complete.set_password(
            db, account, new, hasher=registry.hasher, now=now, actor=actor, via="account"
        )
        epoch = account.session_epoch
    web_session.keep_this_session(account.id, epoch, held)
    flash(gettext("Your password is changed. Your other sessions are signed out."))
    return redirect(url_for("account.security"))


def _count_wrong_password(db: Session, account: Account, now: dt.datetime) -> None:
    """A wrong current password counts as a failed sign-in: the same run of failures, the
    same lock, the same audit events."""
    details = {"reason": Reason.WRONG_PASSWORD.value, "via": "account", "ip": request.remote_addr}
    target = f"account:{account.id}"
    actor = audit.Actor.account(account.id)
    failure = lockout.record_failure(
        db,
        account_id=account.id,
        status_before=account.status,
        lock_after=SigninPolicy.from_settings(services().settings).lock_after,
        now=now,
    )
    events = [audit.Event(actor, audit.Action.LOGIN_FAILED, target, details)]
    if failure.locked_now:
        locked = {"failures": failure.failures, "ip": request.remote_addr}
        events.append(audit.Event(actor, audit.Action.ACCOUNT_LOCKED, target, locked))
    audit.append(db, events, now=now)


# --- /account/security ----------------------------------------------------------------------


def _security_page(account: Account, **extra: Any) -> str:
    with services().db.session() as db:
        active = factors.active(db, account.id)
        codes_left = recovery.remaining(db, account.id)
        for f in active:
            db.expunge(f)
        sign_ins = not_me.recent(db, account.id, limit=10)
        for s in sign_ins:
            db.expunge(s)
    return render_template(
        "security.html",
        account=account,
        factors=active,
        codes_left=codes_left,
        sign_ins=[(s, user_agents.describe(s.user_agent, gettext)) for s in sign_ins],
        **extra,
    )


@account_bp.get("/account/security")
@web_session.login_required
def security() -> Any:
    account = web_session.current_account()
    assert account is not None
    return _security_page(account)


@account_bp.post("/account/security/totp")
@web_session.login_required
def totp_start() -> Any:
    account = web_session.current_account()
    assert account is not None
    registry = services()
    try:
        with registry.db.session() as db:
            pending = factors.start_totp(
                db,
                account=account,
                name=request.form.get("name", ""),
                keys=registry.keys,
                issuer=registry.settings.totp_issuer,
                now=utcnow(),
            )
    except InvalidInput:  # the name: too long, or a control character
        flash(gettext(BAD_NAME))
        return redirect(url_for("account.security"))
    return _totp_page(pending.factor_id, pending.secret, pending.uri)


def _totp_page(factor_id: int, secret: str, uri: str, error: str | None = None) -> str:
    code = qr.svg(uri, title=gettext("QR code for your authenticator app"))
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render_template(
        "totp_enroll.html", factor_id=factor_id, qr=code, secret=grouped, uri=uri, error=error
    )


@account_bp.post("/account/security/totp/<int:factor_id>/confirm")
@web_session.login_required
def totp_confirm(factor_id: int) -> Any:
    account = web_session.current_account()
    assert account is not None
    registry = services()
    now = utcnow()
    actor = audit.Actor.account(account.id)
    try:
        with registry.db.session() as db:
            first = not factors.active(db, account.id)
            result = factors.confirm_totp(
                db,
                account=account,
                factor_id=factor_id,
                code=request.form.get("code", ""),
                keys=registry.keys,
                window=registry.settings.totp_window,
                actor=actor,
                now=now,
            )
            ok = result.status is totp.TotpStatus.OK
            codes = (
                recovery.generate(db, account_id=account.id, actor=actor, now=now)
                if ok and first
                else None
            )
    except NotFound:
        flash(gettext("This set-up has expired: start again."))
        return redirect(url_for("account.security"))
    if not ok:
        return _totp_retry(account, factor_id), 400
    if codes:
        return render_template("recovery_codes.html", codes=codes, first=True)
    flash(gettext("Authenticator app added."))
    return redirect(url_for("account.security"))


def _totp_retry(account: Account, factor_id: int) -> str:
    """The same QR code again: the secret stays until the enrollment is confirmed."""
    registry = services()
    with registry.db.session() as db:
        pending = factors.pending_totp(db, account_id=account.id, factor_id=factor_id)
        secret = registry.keys.decrypt(
            pending.secret_enc or "", context=factors.context(account.id)
        )
    uri = totp.provisioning_uri(
        secret, account_name=account.email, issuer=registry.settings.totp_issuer
    )
    return _totp_page(
        factor_id, secret, uri, gettext("That code is not right: type the one your app shows now.")
    )


@account_bp.post("/account/security/factors/<int:factor_id>/rename")
@web_session.login_required
def factor_rename(factor_id: int) -> Any:
    account = web_session.current_account()
    assert account is not None
    try:
        with services().db.session() as db:
            factors.rename(
                db,
                account_id=account.id,
                factor_id=factor_id,
                name=request.form.get("name", ""),
                actor=audit.Actor.account(account.id),
                now=utcnow(),
            )
        flash(gettext("Name changed."))
    except NotFound:
        flash(gettext(GONE))
    except InvalidInput:
        flash(gettext(BAD_NAME))
    return redirect(url_for("account.security"))


@account_bp.post("/account/security/factors/<int:factor_id>/remove")
@web_session.login_required
def factor_remove(factor_id: int) -> Any:
    account = web_session.current_account()
    assert account is not None
    try:
        with services().db.session() as db:
            factors.remove(
                db,
                account=account,
                factor_id=factor_id,
                required_by_policy=False,
                actor=audit.Actor.account(account.id),
                now=utcnow(),
            )
        flash(gettext("Factor removed."))
    except NotFound:
        return _security_page(account, error=gettext(GONE)), 409
    except InvalidInput:  # factors.FactorRefused: the last factor of an account that needs one
        error = gettext(
            "This is your last second factor and your account must keep one: add another "
            "before removing this one."
        )
        return _security_page(account, error=error), 409
    return redirect(url_for("account.security"))


@account_bp.post("/account/security/recovery")
@web_session.login_required
def recovery_regenerate() -> Any:
    account = web_session.current_account()
    assert account is not None
    with services().db.session() as db:
        if not factors.active(db, account.id):
            flash(gettext("Add a second factor first: recovery codes stand in for it."))
            return redirect(url_for("account.security"))
        codes = recovery.generate(
            db, account_id=account.id, actor=audit.Actor.account(account.id), now=utcnow()
        )
    return render_template("recovery_codes.html", codes=codes, first=False)


# --- asking first, and recovery codes saved -------------------------------------------------
# A destructive action is a GET that shows what will happen and a POST (CSRF) that does it,
# so it asks first with or without JavaScript.


@account_bp.get("/account/security/factors/<int:factor_id>/remove")
@web_session.login_required
def factor_remove_confirm(factor_id: int) -> Any:
    account = web_session.current_account()
    assert account is not None
    with services().db.session() as db:
        active = factors.active(db, account.id)
        factor = next((f for f in active if f.id == factor_id), None)
        if factor is not None:
            db.expunge(factor)
    if factor is None:
        flash(gettext(GONE))
        return redirect(url_for("account.security"))
    return render_template("confirm_remove.html", factor=factor, last=len(active) == 1)


@account_bp.get("/account/security/recovery")
@web_session.login_required
def recovery_confirm() -> Any:
    account = web_session.current_account()
    assert account is not None
    with services().db.session() as db:
        enrolled = bool(factors.active(db, account.id))
        codes_left = recovery.remaining(db, account.id)
    if not enrolled:
        flash(gettext("Add a second factor first: recovery codes stand in for it."))
        return redirect(url_for("account.security"))
    return render_template("confirm_recovery.html", codes_left=codes_left)


@account_bp.post("/account/security/recovery/saved")
@web_session.login_required
def recovery_saved() -> Any:
    """The person says the codes shown once are saved; nothing of them is kept to check."""
    if request.form.get("saved") == "yes":
        flash(gettext("Your recovery codes are saved. Keep them somewhere safe."))
    else:
        flash(
            gettext(
                "You did not confirm that your recovery codes are saved: if you do not have "
                "them, make new ones."
            )
        )
    return redirect(url_for("account.security"))
