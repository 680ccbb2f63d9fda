"""Why a reset was forced: a code decided here, worded in the reader's language.

The code is stored with the account, the reset and the notice (ResetReason); pages and
e-mails turn it into a sentence of their language with `sentence`. Only a person writes
free text: an operator's reason is kept beside the code as a note, shown quoted, never
mixed into a sentence of ours.
"""

from __future__ import annotations

from auth import audit
from auth.i18n import N_
from auth.models import ResetReason

# The sign-in's own policy: it resets an account only when the password it was just given
# is in a breach corpus (auth/signin/breached.py).
SIGN_IN = audit.Actor.policy("login")
# The person's own "this wasn't me" (auth/activity/not_me.py): a reset they asked for.
NOT_ME = audit.Actor.policy("not_me")
# The activity guard (auth/activity/guard.py): it blocked robot-like activity.
ACTIVITY = audit.Actor.policy("activity")

SENTENCES = {
    ResetReason.PASSWORD_BREACHED: N_(
        "Your password appears in a leak of stolen passwords: anyone holding that list "
        "could try it on your account."
    ),
    ResetReason.POSSIBLE_EXPOSURE: N_("Your password may have been exposed in a data leak."),
    ResetReason.SECURITY_TEAM: N_("Our security team has asked you to change your password."),
    ResetReason.NOT_ME: N_(
        "You told us that a sign-in to your account was not you: someone may know your password."
    ),
    ResetReason.ACTIVITY_BLOCK: N_(
        "Robot-like activity on your account was stopped: someone else may be using your password."
    ),
}


def decide(actor: audit.Actor, reason: str) -> tuple[ResetReason, str]:
    """The code of a reset forced by `actor` with the text `reason`, and the note kept:
    a person's words (CLI, console, API) are a note under SECURITY_TEAM; an automatic
    policy's text is its own wording, for the audit trail, never shown to the person."""
    if actor == SIGN_IN:
        return ResetReason.PASSWORD_BREACHED, ""
    if actor == NOT_ME:
        return ResetReason.NOT_ME, ""
    if actor == ACTIVITY:
        return ResetReason.ACTIVITY_BLOCK, ""
    if actor.kind != "policy" and reason:
        return ResetReason.SECURITY_TEAM, reason
    return ResetReason.POSSIBLE_EXPOSURE, ""


def sentence(code: str | None) -> str:
    """The msgid of the sentence for `code` (translate it with the reader's catalog); an
    unknown or missing code reads as a possible exposure."""
    try:
        return SENTENCES[ResetReason(code or ResetReason.POSSIBLE_EXPOSURE)]
    except ValueError:
        return SENTENCES[ResetReason.POSSIBLE_EXPOSURE]
