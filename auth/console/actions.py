"""What an administrator does from the console: to a selection of findings, or to one
account.

The work on findings is auth/breach/finding_policy.py's, shared with the automatic policy
table, so a person's action and the table's leave the same rows and the same audit trail;
an account's actions are the CLI's (a forced reset, an unlock) and the pages' (ending every
session). This module checks the form's input and names the administrator as the actor.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import update

from auth import audit
from auth.breach import finding_policy
from auth.console.forms import FieldError
from auth.errors import InvalidInput, NotFound, one_line
from auth.i18n import N_
from auth.models import Account, AccountStatus, table, utcnow
from auth.reset import forced
from auth.services import Services
from auth.signin import lockout
from auth.web import session as web_session
from auth.web.i18n import gettext, ngettext

REASON_MAX = 500


class Choice(enum.StrEnum):
    RESET = "reset"
    MFA = "mfa"
    DISMISS = "dismiss"


LABELS = {
    Choice.RESET: N_("Force a password reset"),
    Choice.MFA: N_("Require a second factor"),
    Choice.DISMISS: N_("Dismiss"),
}


def admin_actor(account_id: int) -> audit.Actor:
    """An administrator acting from the console (`admin:<account id>` in the trail)."""
    return audit.Actor("admin", str(account_id))


def parse_choice(raw: str) -> Choice:
    try:
        return Choice(raw)
    except ValueError:
        raise FieldError("action", gettext("Choose one of the actions below.")) from None


def clean_reason(raw: str, choice: Choice | None = None) -> str:
    """One line, at most REASON_MAX characters; required to dismiss."""
    try:
        reason = one_line(raw, "reason")
    except InvalidInput:
        raise FieldError("reason", gettext("The reason cannot hold control characters.")) from None
    if len(reason) > REASON_MAX:
        message = gettext("The reason has at most %(max)d characters.", max=REASON_MAX)
        raise FieldError("reason", message)
    if choice is Choice.DISMISS and not reason:
        raise FieldError("reason", gettext("Say why these findings are dismissed."))
    return reason


@dataclass(frozen=True)
class ActionSummary:
    choice: Choice
    findings: int  # acted on now
    accounts: int  # reset now / newly required a factor
    already: int  # accounts that already were
    skipped: int  # findings closed or already acted on (as strongly) before

    def message(self) -> str:
        """What was done, in the reader's language (one sentence per fact)."""
        n = self.accounts
        done = {
            Choice.RESET: ngettext(
                "Password reset forced for %(num)d account.",
                "Password reset forced for %(num)d accounts.",
                n,
            ),
            Choice.MFA: ngettext(
                "Second factor now required for %(num)d account.",
                "Second factor now required for %(num)d accounts.",
                n,
            ),
            Choice.DISMISS: ngettext(
                "%(num)d finding dismissed.", "%(num)d findings dismissed.", self.findings
            ),
        }[self.choice]
        parts = [done]
        if self.already:
            parts.append(
                ngettext(
                    "%(num)d account already was.", "%(num)d accounts already were.", self.already
                )
            )
        if self.skipped:
            parts.append(
                ngettext(
                    "%(num)d finding skipped (closed or already acted on).",
                    "%(num)d findings skipped (closed or already acted on).",
                    self.skipped,
                )
            )
        return " ".join(parts)


def act(
    registry: Services, *, admin_id: int, choice: Choice, finding_ids: Sequence[int], reason: str
) -> ActionSummary:
    """Apply one action to the selected findings, in one transaction."""
    actor, now = admin_actor(admin_id), utcnow()
    reason = clean_reason(reason, choice)
    with registry.db.session() as session:
        if choice is Choice.RESET:
            result = finding_policy.force_reset(
                session,
                finding_ids,
                actor=actor,
                reason=reason,
                secret_key=registry.settings.secret_key,
                now=now,
                require_mfa=registry.settings.reset_requires_mfa,
            )
        elif choice is Choice.MFA:
            result = finding_policy.require_mfa(session, finding_ids, actor=actor, now=now)
        else:
            result = finding_policy.dismiss(
                session, finding_ids, actor=actor, reason=reason, now=now
            )
    return ActionSummary(
        choice, len(result.findings), len(result.accounts), len(result.already), len(result.skipped)
    )


# --- one account --------------------------------------------------------------------------


class AccountChoice(enum.StrEnum):
    RESET = "reset"
    MFA = "mfa"
    UNLOCK = "unlock"
    SESSIONS = "sessions"


ACCOUNT_LABELS = {
    AccountChoice.RESET: N_("Force a password reset"),
    AccountChoice.MFA: N_("Require a second factor"),
    AccountChoice.UNLOCK: N_("Unlock"),
    AccountChoice.SESSIONS: N_("End all sessions"),
}
_A = table(Account)


def parse_account_choice(raw: str) -> AccountChoice:
    try:
        return AccountChoice(raw)
    except ValueError:
        raise FieldError("action", gettext("Choose one of the actions below.")) from None


def act_on_account(
    registry: Services, *, admin_id: int, account_id: int, choice: AccountChoice, reason: str
) -> str:
    """Apply one action to one account, in one transaction, audited with the administrator
    as the actor; returns what happened, in the reader's language. Doing it twice changes
    nothing the second time (and says so)."""
    actor, now = admin_actor(admin_id), utcnow()
    reason = clean_reason(reason)
    with registry.db.session() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound(f"no account {account_id}")
        if choice is AccountChoice.RESET:
            plan = forced.Plan(
                reason=reason,
                reset_key="",
                job_id=None,
                require_mfa=registry.settings.reset_requires_mfa,
                actor=actor,
            )
            target = forced.Target(account_id)
            result = forced.apply(
                session, [target], plan, secret_key=registry.settings.secret_key, now=now
            )
            if not result.reset:
                return gettext("This account was already waiting for a new password.")
            return gettext("Password reset forced: an e-mail with a link is on its way.")
        if choice is AccountChoice.MFA:
            if account.mfa_required:
                return gettext("A second factor was already required.")
            session.execute(
                update(_A).where(_A.c.id == account_id).values(mfa_required=True, updated_at=now)
            )
            event = audit.Event(
                actor, audit.Action.ACCOUNT_UPDATED, f"account:{account_id}", {"mfa_required": True}
            )
            audit.append(session, [event], now=now)
            return gettext("A second factor is now required at the next sign-in.")
        if choice is AccountChoice.UNLOCK:
            was = account.status
            lockout.unlock(session, email=account.email, actor=actor, now=now)
            if was != AccountStatus.LOCKED:
                return gettext(
                    "The account was not locked; its count of wrong passwords is cleared."
                )
            return gettext("Account unlocked.")
        ended = web_session.end_all(
            session.connection(), account_id, actor=actor, now=now, details={}
        )
        return ngettext(
            "%(num)d session ended; every device must sign in again.",
            "%(num)d sessions ended; every device must sign in again.",
            ended,
        )
