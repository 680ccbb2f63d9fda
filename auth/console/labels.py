"""What the console shows for the codes it stores: statuses, kinds, actions, actors and
audit details, in the reader's language.

Every code is worded here, once, as a msgid marked with N_ and translated where it is
shown (`label`); the pages never print a raw code. An unknown code (a newer version's,
a hand-made row) is shown as it is rather than hidden. A person's own words (a reason, a
note) are never translated or mixed into a sentence: they come back marked as quoted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from auth.i18n import N_
from auth.models import FindingKind
from auth.web.i18n import gettext

# Most urgent first: a leaked password that still signs in is an open door.
URGENT = FindingKind.VALID_CREDENTIAL.value

KINDS = {
    FindingKind.VALID_CREDENTIAL.value: N_("Leaked password still works"),
    FindingKind.PASSWORD_IN_BREACH.value: N_("Password in a breach"),
    FindingKind.EMAIL_IN_BREACH.value: N_("E-mail address in a breach"),
}
# Alerts for the security team (auth/activity/alerts.py).
ALERT_KINDS = {
    "password_spray": N_("Password spraying"),
    "credential_stuffing": N_("Credential stuffing"),
    "activity_block": N_("Robot-like activity blocked"),
    "activity_step_up": N_("Unusual activity: second factor asked again"),
    "new_sign_in": N_("Sign-in from a new device or network"),
    "not_me": N_("“This wasn't me” reported by the account holder"),
}
ALERT_STATUSES = {"open": N_("Open"), "closed": N_("Closed")}
ALERT_CHANNELS = {"webhook": N_("Webhook"), "email": N_("E-mail")}
ALERT_DELIVERIES = {
    "queued": N_("Waiting to be sent"),
    "sending": N_("Being sent"),
    "sent": N_("Sent"),
    "failed": N_("Not delivered"),
}
ACCOUNT_STATUSES = {
    "active": N_("Active"),
    "reset_required": N_("Reset required"),
    "locked": N_("Locked (wrong passwords)"),
    "disabled": N_("Disabled"),
}
FINDING_STATUSES = {
    "open": N_("Open"),
    "resolved": N_("Resolved"),
    "dismissed": N_("Dismissed"),
}
FINDING_ACTIONS = {
    "reset": N_("Password reset forced"),
    "mfa": N_("Second factor required"),
    "dismiss": N_("Dismissed"),
    "none": N_("No action"),
}
FACTOR_KINDS = {
    "totp": N_("Authenticator app"),
    "webauthn": N_("Security key / passkey"),
}
# Why a reset was forced (the codes of auth/reset/reasons.py).
RESET_REASONS = {
    "password_breached": N_("Password found in a breach at sign-in"),
    "possible_exposure": N_("Possible exposure in a leak"),
    "security_team": N_("Asked by the security team"),
    "not_me": N_("The person said a sign-in was not them"),
    "activity_block": N_("Blocked by the activity guard"),
}
# A sign-in's outcome: the login flow's decision (auth/signin/rules.py).
SIGN_IN_OUTCOMES = {
    "allow": N_("Let in"),
    "mfa_required": N_("Second factor asked"),
    "enroll_required": N_("Asked to add a second factor"),
    "reset_required": N_("Password must change"),
    "deny": N_("Refused"),
}
# A decision in a timeline: the login flow's, or the activity guard's.
DECISIONS = {
    **SIGN_IN_OUTCOMES,
    "step_up": N_("Second factor asked again"),
    "block": N_("Blocked"),
}
# Where a person said "this wasn't me" (auth/activity/not_me.py).
DISOWNED_FROM = {
    "email": N_("The new sign-in e-mail"),
    "security_page": N_("The account's security page"),
}
SIGN_IN_METHODS = {
    "password": N_("Password"),
    "totp": N_("Authenticator app"),
    "webauthn": N_("Security key / passkey"),
    "recovery": N_("Recovery code"),
}
EVENTS = {
    "account:created": N_("Account created"),
    "account:updated": N_("Account updated"),
    "account:reset:forced": N_("Password reset forced"),
    "account:locked": N_("Account locked"),
    "account:unlocked": N_("Account unlocked"),
    "apikey:created": N_("API key created"),
    "apikey:revoked": N_("API key revoked"),
    "finding:recorded": N_("Finding recorded"),
    "finding:acted": N_("Finding acted on"),
    "mfa:enrolled": N_("Second factor added"),
    "mfa:renamed": N_("Second factor renamed"),
    "mfa:removed": N_("Second factor removed"),
    "mfa:failed": N_("Wrong second-factor code"),
    "mfa:locked": N_("Second factor locked"),
    "mfa:webauthn:clone_suspected": N_("Security key possibly cloned"),
    "mfa:recovery:generated": N_("Recovery codes made"),
    "mfa:recovery:used": N_("Recovery code used"),
    "session:started": N_("Signed in"),
    "session:ended_everywhere": N_("Signed out everywhere"),
    "login:failed": N_("Sign-in failed"),
    "login:decided": N_("Sign-in decided"),
    "password:reset:requested": N_("New password requested"),
    "password:changed": N_("Password changed"),
    "alert:raised": N_("Alert raised"),
    "alert:closed": N_("Alert closed"),
}
# Audit detail fields: what each key means to a reader.
FIELDS = {
    "action": N_("Action"),
    "findings": N_("Findings"),
    "kinds": N_("Kinds"),
    "changed": N_("Account changed"),
    "reason": N_("Reason"),
    "note": N_("Note"),
    "method": N_("Method"),
    "ip": N_("Address"),
    "admin": N_("Administrator"),
    "was": N_("Status before"),
    "kind": N_("Kind"),
    "factor": N_("Factor"),
    "name": N_("Name"),
    "mfa_required": N_("Second factor required"),
    "reset_key": N_("Reset"),
    "job": N_("Reset job"),
    "sessions": N_("Sessions ended"),
    "email": N_("E-mail"),
    "remaining": N_("Left"),
    "failures": N_("Failures"),
    "until": N_("Until"),
    "via": N_("Through"),
    "decision": N_("Decision"),
    "occurrences": N_("Occurrences"),
    "cause": N_("Cause"),
    "accounts": N_("Accounts"),
    "network": N_("Network"),
    "subjects_hour": N_("Subjects looked up in the hour"),
    "network_accounts": N_("Accounts new to the network"),
    "new_network": N_("Network new to the account"),
    "exposed_subjects": N_("Subjects exposed"),
    "reasons": N_("Rules"),
    "sessions_ended": N_("Sessions ended"),
    "new_network_sign_ins": N_("Sign-ins from new networks"),
    "accounts_tried": N_("Accounts tried"),
    "window_seconds": N_("Window (seconds)"),
    "attempts": N_("Attempts"),
    "banned_seconds": N_("Ban (seconds)"),
    "sign_in": N_("Sign-in"),
    "from": N_("Reported from"),
    "outcome": N_("Outcome"),
    "banned": N_("Banned"),
    "account": N_("Account"),
}
# Details that hold a person's own words: quoted, never translated.
FREE_TEXT = {"note"}
POLICIES = {
    "login": N_("Sign-in policy"),
    "finding_policy": N_("Findings policy"),
    **ALERT_KINDS,  # an alert is raised by the rule that names its kind
}


def _worded(table: Mapping[str, str], code: object) -> str:
    key = "" if code is None else str(code)
    msgid = table.get(key)
    return gettext(msgid) if msgid is not None else key


def kind(code: object) -> str:
    return _worded(KINDS, code)


def alert_kind(code: object) -> str:
    return _worded(ALERT_KINDS, code)


def alert_status(code: object) -> str:
    return _worded(ALERT_STATUSES, code)


def alert_channel(code: object) -> str:
    return _worded(ALERT_CHANNELS, code)


def alert_delivery(code: object) -> str:
    return _worded(ALERT_DELIVERIES, code)


def field(code: object) -> str:
    """An audit detail's or an alert evidence's key, worded (an unknown one as it is)."""
    return _worded(FIELDS, code)


def account_status(code: object) -> str:
    return _worded(ACCOUNT_STATUSES, code)


def finding_status(code: object) -> str:
    return _worded(FINDING_STATUSES, code)


def finding_action(code: object) -> str:
    return _worded(FINDING_ACTIONS, code)


def factor_kind(code: object) -> str:
    return _worded(FACTOR_KINDS, code)


def event(code: object) -> str:
    return _worded(EVENTS, code)


def reset_reason(code: object) -> str:
    return _worded(RESET_REASONS, code)


def sign_in_outcome(code: object) -> str:
    return _worded(SIGN_IN_OUTCOMES, code)


def yes_no(value: object) -> str:
    return gettext("Yes") if value else gettext("No")


def admin_ids(actors: Iterable[str | None]) -> set[int]:
    """The account ids behind `admin:<id>` and `account:<id>` actors (to look their
    e-mails up in one query)."""
    ids = set()
    for actor in actors:
        kind_, _, ident = (actor or "").partition(":")
        if kind_ in ("admin", "account") and ident.isdigit():
            ids.add(int(ident))
    return ids


def actor(value: str | None, emails: Mapping[int, str]) -> str:
    """`admin:6` → "Administrator alice@…", `cli:bob` → "CLI (bob)", `policy:login` →
    "Policy: Sign-in policy"; `emails` maps account ids to addresses."""
    kind_, _, ident = (value or "").partition(":")
    who = emails.get(int(ident)) if ident.isdigit() else None
    if kind_ == "admin":
        return gettext("Administrator %(who)s", who=who or f"#{ident}")
    if kind_ == "account":
        return gettext("The account holder (%(who)s)", who=who or f"#{ident}")
    if kind_ == "cli":
        return gettext("CLI (%(user)s)", user=ident)
    if kind_ == "policy":
        return gettext("Policy: %(name)s", name=_worded(POLICIES, ident))
    if kind_ == "api_key":
        return gettext("API key %(key)s", key=ident)
    if kind_ == "hibp":
        return gettext("Have I Been Pwned notification")
    if kind_ == "anonymous" and ident == "forgot":
        return gettext("Forgotten-password form")
    return value or "—"


@dataclass(frozen=True)
class Field:
    """One audit detail as shown: its label, its value, and whether the value is a
    person's own words (quoted, marked as such)."""

    label: str
    value: str
    quoted: bool = False


def _value(key: str, value: Any) -> tuple[str, bool]:
    if key == "reason":
        if isinstance(value, str) and value in RESET_REASONS:
            return reset_reason(value), False
        return str(value), True  # an operator's reason: their words
    if key in FREE_TEXT:
        return str(value), True
    if isinstance(value, bool):
        return yes_no(value), False
    if key == "action":
        return finding_action(value), False
    if key in ("was", "status"):
        return account_status(value), False
    if key == "method":
        return _worded(SIGN_IN_METHODS, value), False
    if key in ("decision", "outcome"):
        return _worded(DECISIONS, value), False
    if key == "from":
        return _worded(DISOWNED_FROM, value), False
    if key in ("kind", "factor") and isinstance(value, str):
        return _worded({**FACTOR_KINDS, **KINDS, **ALERT_KINDS}, value), False
    if key == "kinds" and isinstance(value, list):
        return ", ".join(kind(v) for v in value), False
    if key == "findings" and isinstance(value, list):
        return ", ".join(f"#{v}" for v in value) or "—", False
    if value is None:
        return "—", False
    if isinstance(value, list):
        return ", ".join(str(v) for v in value), False
    return str(value), False


def details(values: Mapping[str, Any]) -> list[Field]:
    """An audit event's details as labelled fields, in the order they were stored; an
    empty free text is left out."""
    fields = []
    for key, raw in values.items():
        if key in ("reason", "note") and raw in ("", None):
            continue
        value, quoted = _value(key, raw)
        fields.append(Field(_worded(FIELDS, key), value, quoted))
    return fields
