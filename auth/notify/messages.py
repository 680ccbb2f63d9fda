"""Notices as e-mails: templates rendered per language, headers that cannot be injected.

Pure: the caller supplies the notice, the account, the link and the time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path

import jinja2

from auth.config import LANGUAGES, Settings
from auth.errors import InvalidInput
from auth.models import Account, Notice, utcnow

KINDS = ("reset_forced", "reset_requested")
TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"

_html = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_text = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=False,  # noqa: S701 - plain text, never parsed as HTML
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def render(kind: str, *, language: str, context: Mapping[str, str]) -> tuple[str, str, str]:
    """(subject, text, html). The text template's first line is `Subject: …`, so a
    translation keeps its subject and body together; the HTML gets it as `subject`."""
    if kind not in KINDS or language not in LANGUAGES:
        raise InvalidInput(f"no e-mail template for kind {kind!r} in language {language!r}")
    text = _text.get_template(f"{kind}.{language}.txt").render(context)
    first, _, body = text.partition("\n")
    if not first.startswith("Subject: "):
        raise InvalidInput(f"{kind}.{language}.txt must start with a `Subject: ` line")
    subject = first.removeprefix("Subject: ").strip()
    html = _html.get_template(f"{kind}.{language}.html").render({**context, "subject": subject})
    return subject, body.lstrip("\n"), html


def message_id(idempotency_key: str, mail_from: str) -> str:
    """The same notice always gets the same Message-ID, so a resend after a crash is visible."""
    digest = hashlib.sha256(b"notice:" + idempotency_key.encode()).hexdigest()[:32]
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "breachguard.invalid"
    return f"<{digest}@{domain}>"


def build_message(
    notice: Notice,
    account: Account,
    *,
    link: str,
    settings: Settings,
    now: dt.datetime | None = None,
) -> EmailMessage:
    """The notice as an e-mail. Nothing from the person goes into a header but their name and
    address (both encoded by the e-mail library), so no header can be injected."""
    language = account.language if account.language in LANGUAGES else settings.default_language
    subject, text, html = render(
        notice.kind,
        language=language,
        context={
            "name": account.name,
            "reason": notice.reason or account.reset_reason or "",
            "link": link,
            "minutes": str(settings.reset_token_minutes),
            "security_url": f"{settings.public_url}/account/security",
            "forgot_url": f"{settings.public_url}/forgot",
        },
    )
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = Address(display_name=" ".join(account.name.split()), addr_spec=account.email)
    message["Subject"] = subject
    message["Date"] = format_datetime(now or utcnow())
    message["Message-ID"] = message_id(notice.idempotency_key, settings.mail_from)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    message["X-Auto-Response-Suppress"] = "All"  # the same, for Exchange
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message
