"""What an alert's push carries: the JSON the webhook receives and how it is signed, the
e-mail the security team receives, and the webhook's HTTP client.

The webhook's signature (a contract with the receiver, documented in the README):

    X-Breachguard-Timestamp: <Unix time in seconds when this attempt was sent>
    X-Breachguard-Signature: sha256=<hex HMAC-SHA256(ALERT_WEBHOOK_SECRET, "<timestamp>." + body)>

The timestamp is inside the signed content, so a receiver that refuses a timestamp older
than a few minutes refuses a replayed request; the body is signed byte for byte as sent.
`X-Breachguard-Delivery` names the delivery: a retry after a lost answer carries the same
one, so a receiver can drop a duplicate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import requests

from auth import i18n
from auth.config import Settings
from auth.console import labels
from auth.errors import BreachguardError
from auth.models import Alert, iso_utc
from auth.notify import messages

SIGNATURE_HEADER = "X-Breachguard-Signature"
TIMESTAMP_HEADER = "X-Breachguard-Timestamp"
DELIVERY_HEADER = "X-Breachguard-Delivery"
TIMEOUT = (5.0, 10.0)  # connect, read: a hanging receiver costs one timeout, then a retry
LISTED_IN_MAIL = 50  # accounts or addresses written out in the e-mail; the console has all


@dataclass(frozen=True)
class AlertView:
    """An alert as it is pushed: its row, and its accounts as (id, e-mail) pairs."""

    alert: Alert
    accounts: Sequence[tuple[int, str]]

    def url(self, settings: Settings) -> str:
        return f"{settings.public_url}/admin/alerts/{self.alert.id}"


class WebhookError(BreachguardError):
    """The webhook answered with something other than 2xx. `permanent`: a 4xx other than
    408 and 429, which a retry would only repeat."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"the webhook answered {status} {reason}".strip())
        self.status = status
        self.permanent = 400 <= status < 500 and status not in (408, 429)


class NotConfigured(BreachguardError):
    """A channel's settings are missing (ALERT_WEBHOOK_URL or ALERT_WEBHOOK_SECRET,
    SECURITY_ALERT_EMAIL): retried, so setting them lets the queue drain."""


def _time(value: dt.datetime | None) -> str | None:
    return iso_utc(value) if value is not None else None


def payload(view: AlertView, *, settings: Settings) -> dict[str, Any]:
    """The webhook's JSON: the alert as the console shows it, with a link to its page."""
    alert = view.alert
    return {
        "id": alert.id,
        "kind": alert.kind,
        "first_at": _time(alert.first_at),
        "last_at": _time(alert.last_at),
        "occurrences": alert.occurrences,
        "accounts": [{"id": i, "email": e} for i, e in view.accounts],
        "addresses": list(alert.addresses),
        "evidence": alert.evidence or {},
        "suspected_from": _time(alert.suspected_from),
        "closed_at": _time(alert.closed_at),
        "url": view.url(settings),
    }


def body_of(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Breachguard-Signature value for this body sent at `timestamp`."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def secrets_of(settings: Settings) -> tuple[str, ...]:
    """What must never reach a delivery's last_error: the secret, and the webhook's URL and
    path (a receiver's URL often holds its own token)."""
    found = [settings.alert_webhook_secret or ""]
    if settings.alert_webhook_url:
        parts = urlsplit(settings.alert_webhook_url)
        found += [
            settings.alert_webhook_url,
            parts.path + (f"?{parts.query}" if parts.query else ""),
        ]
    return tuple(sorted((s for s in found if len(s) > 1), key=len, reverse=True))


class Webhook:
    """POSTs signed alerts to ALERT_WEBHOOK_URL, one HTTP session reused."""

    def __init__(self, url: str | None, secret: str | None) -> None:
        self.url = url
        self._secret = secret
        self._http = requests.Session()

    def __repr__(self) -> str:  # the URL may hold a token
        return "Webhook(configured)" if self.url else "Webhook(not configured)"

    def close(self) -> None:
        self._http.close()

    def post(self, body: bytes, *, delivery: int, timestamp: int) -> None:
        """Sent when this returns; raises WebhookError (a non-2xx answer), or requests'
        errors (no answer)."""
        if not self.url or not self._secret:
            raise NotConfigured(
                "ALERT_WEBHOOK_URL and ALERT_WEBHOOK_SECRET must both be set to push alerts"
            )
        answer = self._http.post(
            self.url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "breachguard-alerts",
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: signature(self._secret, timestamp, body),
                DELIVERY_HEADER: str(delivery),
            },
            timeout=TIMEOUT,
            allow_redirects=False,  # a redirect would carry the signed alert elsewhere
        )
        answer.close()
        if not 200 <= answer.status_code < 300:
            raise WebhookError(answer.status_code, answer.reason or "")


def webhook_from_settings(settings: Settings) -> Webhook:
    return Webhook(settings.alert_webhook_url, settings.alert_webhook_secret)


def _worded(table: Mapping[str, str], code: str, language: str) -> str:
    msgid = table.get(code)
    return i18n.translations(language).gettext(msgid) if msgid else code


def kind_words(kind: str, language: str) -> str:
    return _worded(labels.ALERT_KINDS, kind, language)


def email_message(
    view: AlertView, *, delivery: int, settings: Settings, now: dt.datetime
) -> EmailMessage:
    """The e-mail to SECURITY_ALERT_EMAIL, in DEFAULT_LANGUAGE: what happened, to whom,
    from where, and the link to the alert's console page. No secret: counts, accounts and
    addresses only."""
    alert = view.alert
    language = settings.default_language  # one of LANGUAGES: the settings refuse others
    evidence = alert.evidence or {}
    context = {
        "language": language,
        "alert": alert,
        "kind": kind_words(alert.kind, language),
        "first_at": i18n.format_datetime(alert.first_at, language),
        "last_at": i18n.format_datetime(alert.last_at, language),
        "count": len(alert.accounts),
        "accounts": [e for _, e in view.accounts][:LISTED_IN_MAIL],
        "addresses": list(alert.addresses)[:LISTED_IN_MAIL],
        "counts": [
            (_worded(labels.FIELDS, k, language), i18n.format_number(v, language))
            for k, v in evidence.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        ],
        "link": view.url(settings),
        "listed": LISTED_IN_MAIL,
    }
    subject, text, html = messages.render_template(
        "security_alert", language=language, context=context
    )
    return messages.envelope(
        settings.security_alert_email or "",
        subject=subject,
        text=text,
        html=html,
        key=f"alert-delivery:{delivery}",
        settings=settings,
        now=now,
    )
