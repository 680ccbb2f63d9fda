"""What an administrator does to a selection of findings from the console.

The work itself is auth/breach/finding_policy.py's, shared with the automatic policy table, so a
person's action and the table's leave the same rows and the same audit trail; this
module checks the form's input and names the administrator as the actor.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from auth import audit
from auth.breach import finding_policy
from auth.errors import InvalidInput, one_line
from auth.models import utcnow
from auth.services import Services

REASON_MAX = 500


class Choice(enum.StrEnum):
    RESET = "reset"
    MFA = "mfa"
    DISMISS = "dismiss"


LABELS = {
    Choice.RESET: "Force a password reset",
    Choice.MFA: "Require a second factor",
    Choice.DISMISS: "Dismiss",
}


def admin_actor(account_id: int) -> audit.Actor:
    """An administrator acting from the console (`admin:<account id>` in the trail)."""
    return audit.Actor("admin", str(account_id))


def parse_choice(raw: str) -> Choice:
    try:
        return Choice(raw)
    except ValueError:
        names = ", ".join(c.value for c in Choice)
        raise InvalidInput(f"action: {raw!r} is not one of {names}") from None


def clean_reason(raw: str, choice: Choice) -> str:
    """One line, at most REASON_MAX characters; required to dismiss."""
    reason = one_line(raw, "reason")
    if len(reason) > REASON_MAX:
        raise InvalidInput(f"reason: at most {REASON_MAX} characters")
    if choice is Choice.DISMISS and not reason:
        raise InvalidInput("reason: say why these findings are dismissed")
    return reason


@dataclass(frozen=True)
class ActionSummary:
    choice: Choice
    findings: int  # acted on now
    accounts: int  # reset now / newly required a factor
    already: int  # accounts that already were
    skipped: int  # findings closed or already acted on (as strongly) before

    def message(self) -> str:
        done = {
            Choice.RESET: f"password reset forced for {self.accounts} account(s)",
            Choice.MFA: f"second factor now required for {self.accounts} account(s)",
            Choice.DISMISS: "dismissed",
        }[self.choice]
        parts = [f"{self.findings} finding(s): {done}"]
        if self.already:
            parts.append(f"{self.already} account(s) already were")
        if self.skipped:
            parts.append(f"{self.skipped} finding(s) skipped (closed or already acted on)")
        return "; ".join(parts) + "."


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
